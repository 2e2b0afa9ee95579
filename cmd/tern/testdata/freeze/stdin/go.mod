module stdin

go 1.21
