//! Live reload (`sbc reload`, SIGHUP): the configuration file is read and
//! checked again as `sbc check` does; if it is refused, the running one
//! stays and the answer is the check's error. Otherwise trunks, routes
//! and number rules, the phones' users and every TLS profile's
//! certificates apply to new calls and new connections at once
//! ([`b2bua::B2bua::reconfigure`]: calls in progress keep their trunks,
//! dialogs and media). What is bound at start — listeners, the media
//! relay, the HTTP endpoint, SIP timers, DNS servers, limits, the
//! registrar's store — is not changed: the answer names each such section
//! that differs ("takes effect at restart").
//!
//! It also owns what follows a trunk's slot in the shell: the TLS identity
//! each slot presents and the DNS task of each peer without an address.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use b2bua::B2bua;
use tokio::sync::mpsc;
use transport::{Resolver, TlsContext};

use crate::config::{self, Loaded};
use crate::daemon::{resolve_peer, Resolution};

/// Sections (and keys) read only at start.
const AT_START: &[(&str, Option<&str>)] = &[
    ("listen", None),
    ("sip", None),
    ("limits", None),
    ("log", None),
    ("drain", None),
    ("media", None),
    ("dns", None),
    ("http", None),
    ("protect", None),
    ("sbc", Some("user_agent")),
    ("sbc", Some("control_socket")),
];

/// The `[phones]` keys a reload takes; the others are read at start.
const PHONES_RELOADED: &[&str] = &["users"];

/// The sections (and keys) of `new` read only at start that differ from
/// `started`: `[media]`, `[sbc] user_agent`, `[phones] store`.
pub(crate) fn at_start_changes(started: &toml::Table, new: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    for (section, key) in AT_START {
        let get = |t: &toml::Table| {
            let s = t.get(*section);
            match key {
                Some(k) => s.and_then(|s| s.get(k)).cloned(),
                None => s.cloned(),
            }
        };
        if get(started) != get(new) {
            out.push(match key {
                Some(k) => format!("[{section}] {k}"),
                None => format!("[{section}]"),
            });
        }
    }
    let phones = |t: &toml::Table| -> Option<toml::Table> {
        let mut p = t.get("phones")?.as_table()?.clone();
        p.retain(|k, _| !PHONES_RELOADED.contains(&k));
        Some(p)
    };
    match (phones(started), phones(new)) {
        (Some(a), Some(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                if a.get(k) != b.get(k) {
                    out.push(format!("[phones] {k}"));
                }
            }
        }
        (None, None) => {}
        _ => out.push("[phones]".into()),
    }
    out
}

/// What follows a configuration through reloads.
pub(crate) struct Reloader {
    /// Where the configuration comes from: its file, or (without one)
    /// the text it was started with and its name.
    path: Option<std::path::PathBuf>,
    text: String,
    source: String,
    /// The configuration at start, for the sections a reload does not change.
    started_table: toml::Table,
    /// How peer names are refreshed (`[dns]`, read at start).
    refresh: crate::daemon::Refresh,
    /// TLS contexts by profile name (listeners' and trunks'): a reload
    /// has each existing one adopt its new files in place.
    tls: BTreeMap<String, Arc<TlsContext>>,
    /// DNS tasks by (trunk slot, peer).
    tasks: HashMap<(usize, usize), tokio::task::JoinHandle<()>>,
    resolver: Resolver,
    resolved: mpsc::Sender<Resolution>,
    /// Reloads applied and refused.
    pub(crate) applied: u64,
    pub(crate) refused: u64,
}

impl Drop for Reloader {
    fn drop(&mut self) {
        for t in self.tasks.values() {
            t.abort();
        }
    }
}

impl Reloader {
    pub(crate) fn new(
        started: &Loaded,
        tls: BTreeMap<String, Arc<TlsContext>>,
        resolver: Resolver,
        resolved: mpsc::Sender<Resolution>,
    ) -> Reloader {
        let started_table = started.text.parse::<toml::Table>().unwrap_or_default();
        Reloader {
            path: started.path.clone(),
            text: started.text.clone(),
            source: started.source.clone(),
            started_table,
            refresh: started.dns.refresh,
            tls,
            tasks: HashMap::new(),
            resolver,
            resolved,
            applied: 0,
            refused: 0,
        }
    }

    /// The TLS context of profile `name`.
    pub(crate) fn tls(&self, name: &str) -> Option<Arc<TlsContext>> {
        self.tls.get(name).cloned()
    }

    /// The TLS contexts by profile name.
    pub(crate) fn tls_map(&self) -> &BTreeMap<String, Arc<TlsContext>> {
        &self.tls
    }

    /// Every TLS context (SIGUSR2 re-reads them and closes connections).
    pub(crate) fn tls_all(&self) -> Vec<Arc<TlsContext>> {
        self.tls.values().cloned().collect()
    }

    /// Starts a DNS task for every peer of `trunk` (slot `slot`) that has no
    /// configured address; returns the (slot, peer) pairs started.
    pub(crate) fn resolve(&mut self, slot: usize, trunk: &trunk::TrunkSpec) -> Vec<(usize, usize)> {
        let mut started = Vec::new();
        for (pi, p) in trunk
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.addr.is_none())
        {
            let task = tokio::spawn(resolve_peer(
                self.resolver.clone(),
                self.refresh,
                (slot, pi),
                p.host.clone(),
                p.port,
                p.transport,
                self.resolved.clone(),
            ));
            if let Some(old) = self.tasks.insert((slot, pi), task) {
                old.abort();
            }
            started.push((slot, pi));
        }
        started
    }

    /// Reads the configuration again and applies it (see the module
    /// documentation). `trunk_tls` is the TLS identity of each trunk slot.
    pub(crate) fn reload(
        &mut self,
        b2b: &mut B2bua,
        trunk_tls: &mut Vec<Option<Arc<TlsContext>>>,
        now: Instant,
    ) -> Result<String, String> {
        let r = self.try_reload(b2b, trunk_tls, now);
        match &r {
            Ok(_) => self.applied += 1,
            Err(_) => self.refused += 1,
        }
        r
    }

    fn try_reload(
        &mut self,
        b2b: &mut B2bua,
        trunk_tls: &mut Vec<Option<Arc<TlsContext>>>,
        now: Instant,
    ) -> Result<String, String> {
        // Everything that can fail comes first; nothing is applied before.
        let new = match &self.path {
            Some(p) => config::load(p),
            None => config::parse(&self.text, &self.source),
        }
        .map_err(|e| e.to_string())?;
        let tls = new.tls_contexts().map_err(|e| e.to_string())?;
        let users = match &new.phones {
            Some(p) => Some(
                registrar::Users::load(&p.users_file, &p.phones.registrar.auth.realm)
                    .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let table = new.text.parse::<toml::Table>().map_err(|e| e.to_string())?;
        let at_start = at_start_changes(&self.started_table, &table);
        let done = b2b
            .reconfigure(
                now,
                b2bua::Reconfig {
                    trunks: new.trunks.clone(),
                    routes: new.routes.clone(),
                    users,
                },
            )
            .map_err(|e| format!("{}: {e}", new.source))?;
        // Certificates: the contexts the listeners and trunks hold take
        // the new files; new profiles are added.
        for (name, ctx) in tls {
            match self.tls.get(&name) {
                Some(old) => old.adopt(&ctx),
                None => {
                    self.tls.insert(name, ctx);
                }
            }
        }
        trunk_tls.resize(b2b.trunks().len(), None);
        for (t, &slot) in new.trunks.iter().zip(&done.slots) {
            trunk_tls[slot] = t.tls.as_deref().and_then(|n| self.tls(n));
        }
        for &slot in &done.retired {
            self.tasks.retain(|&(s, _), task| {
                if s == slot {
                    task.abort();
                }
                s != slot
            });
        }
        let mut resolving = 0;
        for (t, &slot) in new.trunks.iter().zip(&done.slots) {
            if done.added.contains(&slot) {
                resolving += self.resolve(slot, t).len();
            }
        }
        let name = |s: &usize| b2b.trunks()[*s].name.clone();
        let added: Vec<String> = done.added.iter().map(name).collect();
        let retired: Vec<String> = done.retired.iter().map(name).collect();
        let mut text = format!(
            "{}: {} trunks ({} unchanged, new or changed: [{}], replaced or removed: [{}]), {} routes",
            new.source,
            new.trunks.len(),
            new.trunks.len() - added.len(),
            added.join(", "),
            retired.join(", "),
            new.routes.routes.len(),
        );
        if new.phones.is_some() {
            text.push_str(", users read again");
        }
        if resolving > 0 {
            text.push_str(&format!(", {resolving} peer names being resolved"));
        }
        if !at_start.is_empty() {
            text.push_str(&format!(
                "; not changed until restart: {}",
                at_start.join(", ")
            ));
        }
        for w in &new.warnings {
            tracing::warn!("{w}");
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> toml::Table {
        s.parse().unwrap()
    }

    #[test]
    fn sections_read_at_start_are_named_when_they_change() {
        let a = table(
            "[sbc]\nfqdn = \"a\"\n[media]\nport_min = 1\n[phones]\nusers = \"u\"\nstore = \"memory\"\n",
        );
        assert!(at_start_changes(&a, &a).is_empty());
        // fqdn, trunks, routes, tls and the users file reload.
        let b = table(
            "[sbc]\nfqdn = \"b\"\n[media]\nport_min = 1\n[phones]\nusers = \"v\"\nstore = \"memory\"\n[[routes]]\nname = \"r\"\n",
        );
        assert!(at_start_changes(&a, &b).is_empty());
        let c = table(
            "[sbc]\nfqdn = \"a\"\nuser_agent = \"x\"\n[media]\nport_min = 2\n[phones]\nusers = \"u\"\nstore = \"redb\"\n",
        );
        assert_eq!(
            at_start_changes(&a, &c),
            vec!["[media]", "[sbc] user_agent", "[phones] store"]
        );
        let d = table("[sbc]\nfqdn = \"a\"\n[media]\nport_min = 1\n");
        assert_eq!(at_start_changes(&a, &d), vec!["[phones]"]);
    }
}
