module gofsdemo

go 1.26
