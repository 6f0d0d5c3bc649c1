//! Routing table of sbc: number normalisation, routes, ordered destinations and failover attempts. Sans-IO.
#![forbid(unsafe_code)]
