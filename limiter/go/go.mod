module memrun/memlimit

go 1.19
