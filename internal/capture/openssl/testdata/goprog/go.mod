module goprog

go 1.17
