module example.com/accgo

go 1.19
