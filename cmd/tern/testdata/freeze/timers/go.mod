module timers

go 1.21
