//! The relay's loopback cases (`cases/`) with the epoll workers.

const IO: relay::Io = relay::Io::Epoll;

mod cases;
