module dangling

go 1.21
