#![forbid(unsafe_code)]

mod auth;
mod digest;
#[cfg(test)]
mod testutil;

pub use auth::{AuthConfig, AuthHeader, AuthOutcome, Authenticator};
pub use digest::{Algorithm, Algorithms, Ha1};
