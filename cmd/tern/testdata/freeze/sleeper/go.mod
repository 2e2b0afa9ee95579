module sleeper

go 1.21
