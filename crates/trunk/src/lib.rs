//! Trunks of sbc (carrier, Teams, ACS, analog gateway): peers, TLS identity, OPTIONS health, inbound classification. Sans-IO.
#![forbid(unsafe_code)]
