module notls

go 1.17
