module clusterdns.test/goresolve

go 1.19
