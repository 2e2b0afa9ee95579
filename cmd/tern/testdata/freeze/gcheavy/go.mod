module gcheavy

go 1.21
