//! Key rotation as one command: the CloudFront key group, the key ring
//! document (`keys.secret_id` or `keys.ring_file`) and the running replicas
//! changed in the one order that never refuses a viewer.
//!
//! Every step reads the current state first and does only what is still
//! missing, so a run that stopped anywhere is finished by running it again.
//! Writes go over the version that was read (the key group's ETag, the
//! ring's version), so two rotations at once cannot both win.

mod cloudfront;
mod replicas;
mod retire;
mod rotate;
mod status;

use std::io::Write;
use std::time::{Duration, SystemTime};

pub use cloudfront::{CloudFront, MAX_KEYS_PER_GROUP};
pub use replicas::Replicas;
pub use retire::{RetirePlan, retire};
pub use rotate::{NewKey, RotatePlan, rotate};
pub use status::status;

use crate::config::Settings;
use crate::keyring::document::{RingDocument, parse_time};
use crate::keyring::store::{RingStore, Stored};

/// What `retire` adds to the wait by default, for clocks and slow replicas.
pub const DEFAULT_MARGIN: Duration = Duration::from_secs(300);

/// What every command works on.
pub struct Context {
    pub cloudfront: CloudFront,
    pub store: RingStore,
    /// `secret …` or `file …`, for messages.
    pub ring_source: String,
    pub key_group_id: String,
    pub replicas: Replicas,
    /// The longest lifetime `serve` mints: `mint.max_ttl`, and
    /// `mint.expiry_rounding` that may round it up.
    pub max_ttl: Duration,
    /// How late a replica may see a new ring (`keys.secret_poll_interval`).
    pub poll_interval: Duration,
    /// How often waits look again.
    pub check_every: Duration,
}

impl Context {
    /// From the configuration `serve` runs with, which must keep its ring
    /// in a secret or a file.
    pub async fn new(
        settings: &Settings,
        key_group_id: String,
        replicas: Replicas,
        timeout: Duration,
        check_every: Duration,
    ) -> Result<Self, String> {
        let Some(source) = &settings.keys.ring else {
            return Err(
                "the configuration keeps its keys in [[keys.key]]: rotation needs the key ring \
                 in keys.secret_id or keys.ring_file (docs/deploy.md, \"Rotating keys\")"
                    .to_owned(),
            );
        };
        Ok(Self {
            cloudfront: CloudFront::new(timeout).await,
            store: RingStore::new(source, timeout)?,
            ring_source: source.to_string(),
            key_group_id,
            replicas,
            max_ttl: settings.mint.max_ttl + settings.mint.expiry_rounding,
            poll_interval: settings.keys.ring_poll_interval,
            check_every,
        })
    }

    async fn read_ring(&self) -> Result<Stored, String> {
        self.store.read().await.map_err(|e| e.to_string())
    }

    async fn write_ring(&self, document: &RingDocument, version: &str) -> Result<String, String> {
        self.store
            .write(document, version)
            .await
            .map_err(|e| format!("{}: {e}", self.ring_source))
    }

    /// When a key that stopped signing at `since` has no valid cookie
    /// left: the longest lifetime, the time a replica may take to see the
    /// change, and `margin` for clocks.
    fn retirable_at(&self, since: SystemTime, margin: Duration) -> SystemTime {
        since + self.max_ttl + self.poll_interval + margin
    }
}

/// A key's place in a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Signs now.
    Active,
    /// In the key group and the ring, not signing yet: the ring's `next`,
    /// a rotation under way.
    Verifying,
    /// No longer signing (since `inactive_since`, when the ring knows).
    Retiring,
}

impl KeyState {
    fn of(document: &RingDocument, id: &str) -> Option<Self> {
        document.key(id)?;
        Some(if document.active.as_deref() == Some(id) {
            Self::Active
        } else if document.next.as_deref() == Some(id) {
            Self::Verifying
        } else {
            Self::Retiring
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Verifying => "verifying",
            Self::Retiring => "retiring",
        }
    }
}

fn inactive_since(document: &RingDocument, id: &str) -> Option<SystemTime> {
    document
        .key(id)
        .and_then(|key| key.inactive_since.as_deref())
        .and_then(|since| parse_time(since).ok())
}

/// A progress line on stdout, out at once.
fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

/// `3h 20m`, for ages and waits.
fn span(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let rounded = if seconds >= 86_400 {
        seconds - seconds % 3600
    } else if seconds >= 3600 {
        seconds - seconds % 60
    } else {
        seconds
    };
    humantime::format_duration(Duration::from_secs(rounded)).to_string()
}

/// Waits until `done` says so, looking every `every`, for at most `limit`;
/// `done` returns whether to stop, and a line of progress when it changed.
async fn wait_until<F, Fut>(
    what: &str,
    limit: Duration,
    every: Duration,
    mut done: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(bool, String), String>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut last = String::new();
    loop {
        let (finished, progress) = done().await?;
        if progress != last {
            say(format!("      {progress}"));
            last = progress;
        }
        if finished {
            return Ok(());
        }
        if tokio::time::Instant::now() + every > deadline {
            return Err(format!(
                "gave up waiting for {what} after {}: {last}; run the command again to go on \
                 waiting",
                span(limit)
            ));
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(super::span(Duration::from_secs(42)), "42s");
        assert_eq!(
            super::span(Duration::from_secs(3 * 3600 + 20 * 60 + 7)),
            "3h 20m"
        );
        assert_eq!(
            super::span(Duration::from_secs(2 * 86_400 + 3 * 3600 + 59)),
            "2days 3h"
        );
    }
}
