//! The relay's loopback cases (`cases/`) with the io_uring workers.

const IO: relay::Io = relay::Io::Uring;

mod cases;
