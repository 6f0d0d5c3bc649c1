#![forbid(unsafe_code)]

mod auth;
mod binding;
mod digest;
mod protect;
mod register;
mod registrar;
mod store;
#[cfg(test)]
mod testutil;
mod users;

pub use auth::{AuthConfig, AuthHeader, AuthOutcome, Authenticator};
pub use binding::{Binding, Event, Flow};
pub use digest::{Algorithm, Algorithms, Ha1};
pub use protect::{BlockAction, ProtectConfig};
pub use registrar::{Config, Counters, DropReason, Input, Output, Registrar};
pub use store::{MemoryStore, RedbStore, Store, StoreError};
pub use users::{User, Users, UsersError};
