module archhop

go 1.21
