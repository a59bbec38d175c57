module tlsprog

go 1.17
