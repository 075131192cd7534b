//! Configuration changes from two sources: the file, watched and applied when its contents
//! change, and the admin API ([`crate::admin`]), whose changes are kept as an overlay on the
//! file's configuration (an upstream or virtual server put or deleted by name) and applied
//! again on top of each new version of the file.
//!
//! The file is polled (its contents hashed every `interval`), which sees every way an editor or
//! a deployment replaces a file (in place, renamed over, a Kubernetes ConfigMap's symlink
//! swap). A file that does not read or check is refused with its error logged and recorded
//! ([`Gateway::last_change`]); the configuration in force keeps serving.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::Gateway;
use crate::config::{Config, ConfigError, UpstreamConfig, VirtualServerConfig};

/// The admin API's changes: each name put (`Some`) or deleted (`None`).
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    upstreams: BTreeMap<String, Option<UpstreamConfig>>,
    virtual_servers: BTreeMap<String, Option<VirtualServerConfig>>,
}

impl Overlay {
    /// Puts (`Some`) or deletes (`None`) the upstream `name`.
    pub fn set_upstream(&mut self, name: String, upstream: Option<UpstreamConfig>) {
        self.upstreams.insert(name, upstream);
    }

    /// Puts (`Some`) or deletes (`None`) the virtual server `name`.
    pub fn set_virtual_server(&mut self, name: String, server: Option<VirtualServerConfig>) {
        self.virtual_servers.insert(name, server);
    }

    /// `base` with the changes made.
    pub fn apply_to(&self, base: &Config) -> Config {
        let mut config = base.clone();
        for (name, change) in &self.upstreams {
            upsert(&mut config.upstreams, name, change.clone(), |u| &u.name);
        }
        for (name, change) in &self.virtual_servers {
            upsert(&mut config.virtual_servers, name, change.clone(), |v| &v.name);
        }
        config
    }
}

/// Replaces the item named `name` (in place), appends it, or removes it.
fn upsert<T>(items: &mut Vec<T>, name: &str, change: Option<T>, name_of: impl Fn(&T) -> &String) {
    let at = items.iter().position(|item| name_of(item) == name);
    match (at, change) {
        (Some(i), Some(item)) => items[i] = item,
        (None, Some(item)) => items.push(item),
        (Some(i), None) => {
            items.remove(i);
        }
        (None, None) => {}
    }
}

/// The configuration's sources: the file's version and the admin overlay.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    base: Option<Config>,
    overlay: Overlay,
}

/// What the admin API changes.
pub enum Edit {
    /// Put an upstream (by its name).
    PutUpstream(Box<UpstreamConfig>),
    /// Delete the upstream named.
    DeleteUpstream(String),
    /// Put a virtual server (by its name).
    PutVirtualServer(VirtualServerConfig),
    /// Delete the virtual server named.
    DeleteVirtualServer(String),
}

impl Gateway {
    fn sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        self.inner.sources.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_sources(&self, base: Config, overlay: Overlay) {
        let mut sources = self.sources();
        sources.base = Some(base);
        sources.overlay = overlay;
    }

    /// Follows the changes other replicas record in the store: at once when Redis announces
    /// one, and by polling its version every `state.poll_interval`. Also forgets expired
    /// sessions, hourly.
    pub(crate) fn follow_store(&self) {
        let gateway = self.clone();
        let shutdown = self.shutdown_token();
        let (tx, mut announced) = tokio::sync::mpsc::channel(16);
        if let Some(redis) = self.inner.redis.clone() {
            tokio::spawn(crate::signal::subscribe(redis, tx, shutdown.clone()));
        }
        let interval = self.config().state.poll_interval;
        tokio::spawn(async move {
            let mut polls: u64 = 0;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    Some(_) = announced.recv() => {}
                    () = shutdown.cancelled() => return,
                }
                polls += 1;
                if let Err(e) = gateway.catch_up().await {
                    tracing::warn!(error = %e, "reading changes from the state store failed");
                }
                if (polls * interval.as_millis().max(1) as u64) % 3_600_000 < interval.as_millis().max(1) as u64 {
                    match gateway.inner.store.expire_sessions().await {
                        Ok(n) if n > 0 => tracing::info!(sessions = n, "expired sessions forgotten"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "forgetting expired sessions failed"),
                    }
                }
            }
        });
    }

    /// Applies the admin changes recorded in the store since the version applied here.
    async fn catch_up(&self) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        let version = self.inner.store.version().await?;
        if version <= self.inner.applied_version.load(Ordering::Acquire) {
            return Ok(());
        }
        let (version, overlay) = self.inner.store.overlay().await?;
        let base = self.sources().base.clone().unwrap_or_else(|| self.config());
        let outcome = self.apply(overlay.apply_to(&base)).await;
        match &outcome {
            Ok(()) => {
                self.sources().overlay = overlay;
                self.inner.applied_version.fetch_max(version, Ordering::AcqRel);
                tracing::info!(version, "applied admin changes made on another replica");
            }
            Err(e) => {
                tracing::error!(version, error = %e, "admin changes made on another replica do not fit here; not applied")
            }
        }
        self.record_change("store", &outcome);
        Ok(())
    }

    /// Applies a new version of the file's configuration (the admin overlay on top).
    pub async fn apply_file(&self, config: Config) -> Result<(), ConfigError> {
        let merged = self.sources().overlay.apply_to(&config);
        let outcome = self.apply(merged).await;
        if outcome.is_ok() {
            self.sources().base = Some(config);
        }
        self.record_change("file", &outcome);
        outcome
    }

    /// Applies one admin change on top of the configuration in force: checked whole first
    /// (refused, and nothing changed, when the result does not check), then recorded in the
    /// state store — so that it survives a restart and reaches the other replicas — then
    /// applied and announced on Redis.
    pub async fn edit(&self, edit: Edit) -> Result<(), EditError> {
        let (base, mut overlay) = {
            let sources = self.sources();
            (sources.base.clone(), sources.overlay.clone())
        };
        let base = base.unwrap_or_else(|| self.config());
        let (kind, name, record) = match &edit {
            Edit::PutUpstream(upstream) => ("upstream", upstream.name.clone(), Some(json(upstream))),
            Edit::DeleteUpstream(name) => ("upstream", name.clone(), None),
            Edit::PutVirtualServer(server) => ("virtual_server", server.name.clone(), Some(json(server))),
            Edit::DeleteVirtualServer(name) => ("virtual_server", name.clone(), None),
        };
        match edit {
            Edit::PutUpstream(upstream) => overlay.set_upstream(upstream.name.clone(), Some(*upstream)),
            Edit::DeleteUpstream(name) => overlay.set_upstream(name, None),
            Edit::PutVirtualServer(server) => overlay.set_virtual_server(server.name.clone(), Some(server)),
            Edit::DeleteVirtualServer(name) => overlay.set_virtual_server(name, None),
        }
        let merged = overlay.apply_to(&base);
        if let Err(e) = self.check(&merged) {
            let outcome = Err(e);
            self.record_change("admin", &outcome);
            return outcome.map_err(EditError::Invalid);
        }
        let version = self
            .inner
            .store
            .put(kind, &name, record)
            .await
            .map_err(EditError::Store)?;
        let outcome = self.apply(merged).await;
        if outcome.is_ok() {
            let mut sources = self.sources();
            sources.base.get_or_insert(base);
            sources.overlay = overlay;
            self.inner
                .applied_version
                .fetch_max(version, std::sync::atomic::Ordering::AcqRel);
        }
        self.record_change("admin", &outcome);
        if let Some(redis) = &self.inner.redis
            && let Err(e) = crate::signal::publish(redis, &version.to_string()).await
        {
            tracing::warn!(error = %e, "announcing a change on Redis failed; other replicas will poll for it");
        }
        outcome.map_err(EditError::Invalid)
    }

    /// Watches the file at `path`: every `interval`, a change of its contents is read and
    /// applied ([`Gateway::apply_file`]); until the gateway shuts down. The gateway must have
    /// been started from this file's contents.
    pub fn watch_file(&self, path: PathBuf, interval: Duration) {
        self.watch_file_with(path, interval, |_| {});
    }

    /// [`Gateway::watch_file`], `adjust` applied to every version read: what the command line
    /// set over the file (`--listen`, `--state`), so that a reload keeps it and reports no
    /// change of it.
    pub fn watch_file_with(&self, path: PathBuf, interval: Duration, adjust: impl Fn(&mut Config) + Send + 'static) {
        let gateway = self.clone();
        {
            let mut sources = self.sources();
            sources.base.get_or_insert_with(|| gateway.config());
        }
        let shutdown = self.shutdown_token();
        // Read now, not in the task: a change made right after this returns (before the task
        // first runs) would otherwise be taken for the starting point and never applied.
        let mut seen = fingerprint(&path);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = shutdown.cancelled() => return,
                }
                let now = fingerprint(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                match Config::load(&path).map(|mut config| {
                    adjust(&mut config);
                    config
                }) {
                    Ok(config) => match gateway.apply_file(config).await {
                        Ok(()) => tracing::info!(path = %path.display(), "configuration file applied"),
                        Err(e) => {
                            tracing::error!(path = %path.display(), error = %e, "configuration file refused; the previous one keeps serving")
                        }
                    },
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "configuration file refused; the previous one keeps serving");
                        gateway.record_change("file", &Err(e));
                    }
                }
            }
        });
    }
}

/// A hash of the file's contents (`None` while it cannot be read).
fn fingerprint(path: &std::path::Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

/// Why an admin change was not made.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The resulting configuration does not check.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// The state store did not record it.
    #[error("the state store did not record the change: {0}")]
    Store(String),
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The sources, shared by the gateway.
pub(crate) type SharedSources = Mutex<Sources>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_replaces_in_place_appends_and_removes_by_name() {
        let base = Config::parse(
            "upstreams:\n  - {name: a, builtin: everything}\n  - {name: b, builtin: everything}\n",
            false,
        )
        .unwrap();
        let mut overlay = Overlay::default();
        let mut a = base.upstreams[0].clone();
        a.prefix = Some("x".into());
        overlay.upstreams.insert("a".into(), Some(a));
        overlay.upstreams.insert("b".into(), None);
        overlay
            .upstreams
            .insert("c".into(), Some(UpstreamConfig::builtin("c", "everything")));
        overlay.upstreams.insert("zzz".into(), None);
        let merged = overlay.apply_to(&base);
        let names: Vec<&str> = merged.upstreams.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(merged.upstreams[0].prefix.as_deref(), Some("x"));
    }
}
