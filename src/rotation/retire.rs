//! `cfmint keys retire`: a key that stopped signing long enough ago leaves
//! the key group, then CloudFront, then the key ring (its private key with
//! it). Refused while the key signs, or while cookies it signed may still
//! be in use.

use std::time::{Duration, SystemTime};

use super::{Context, KeyState, inactive_since, say, span};
use crate::keyring::document::format_time;

pub struct RetirePlan {
    pub key_pair_id: String,
    /// Added to the wait, for clocks and late replicas.
    pub margin: Duration,
    pub dry_run: bool,
}

pub async fn retire(cx: &Context, plan: &RetirePlan) -> Result<(), String> {
    let id = plan.key_pair_id.as_str();
    let stored = cx.read_ring().await?;
    let group = cx.cloudfront.key_group(&cx.key_group_id).await?;
    let public_keys = cx.cloudfront.public_keys().await?;
    let public_key = public_keys.iter().find(|key| key.id == id);
    let in_ring = stored.document.key(id).is_some();
    let in_group = group.items.iter().any(|item| item == id);
    if !in_ring && !in_group && public_key.is_none() {
        say(format!(
            "{id} is in neither the key group, CloudFront's public keys nor the key ring: \
             nothing to do"
        ));
        return Ok(());
    }
    let state = KeyState::of(&stored.document, id);
    if state == Some(KeyState::Active) {
        return Err(format!(
            "{id} is the active key: rotate to a new key first (cfmint keys rotate)"
        ));
    }
    // Since when no replica signs with it: when it stopped being active,
    // or, for a key that never was, when it was made.
    let since = inactive_since(&stored.document, id).or(public_key.map(|key| key.created));
    if let Some(since) = since {
        let at = cx.retirable_at(since, plan.margin);
        if let Ok(left) = at.duration_since(SystemTime::now()) {
            let why = match state {
                Some(KeyState::Retiring) => format!(
                    "it stopped signing at {}, and cookies it signed stay valid for up to \
                     mint.max_ttl with mint.expiry_rounding ({}), after keys.secret_poll_interval ({}) for the replicas \
                     to notice, plus --margin ({})",
                    format_time(since),
                    span(cx.max_ttl),
                    span(cx.poll_interval),
                    span(plan.margin)
                ),
                _ => format!(
                    "it was made at {}, and is younger than mint.max_ttl with mint.expiry_rounding ({}) plus \
                     keys.secret_poll_interval ({}) and --margin ({})",
                    format_time(since),
                    span(cx.max_ttl),
                    span(cx.poll_interval),
                    span(plan.margin)
                ),
            };
            return Err(format!(
                "{id} cannot be retired yet: {why}; it may be retired after {} (in {})",
                format_time(at),
                span(left + Duration::from_secs(1))
            ));
        }
    }
    for (url, report) in cx.replicas.reports().await {
        match report {
            Ok(report) if report.active == id => {
                return Err(format!("{id} cannot be retired: {url} still signs with it"));
            }
            Ok(_) => {}
            Err(e) => say(format!("warning: cannot ask {url}: {e}")),
        }
    }
    if in_group && group.items.len() == 1 {
        return Err(format!(
            "{id} is the only key in key group {}; CloudFront needs at least one",
            group.id
        ));
    }
    if plan.dry_run {
        let steps = [
            (in_group, format!("remove {id} from key group {}", group.id)),
            (
                public_key.is_some(),
                format!("delete public key {id} from CloudFront"),
            ),
            (
                in_ring,
                format!("delete {id} and its private key from {}", cx.ring_source),
            ),
        ];
        for (needed, what) in steps {
            say(if needed {
                format!("would {what}")
            } else {
                format!("done: {what}")
            });
        }
        say("dry run: nothing was changed");
        return Ok(());
    }
    // 1. CloudFront stops accepting its signatures.
    if in_group {
        let items = group
            .items
            .iter()
            .filter(|item| *item != id)
            .cloned()
            .collect();
        cx.cloudfront.set_group_keys(&group, items).await?;
        say(format!("[1/3] key group: removed {id} from {}", group.id));
    } else {
        say(format!("[1/3] key group: {id} is not in {}", group.id));
    }
    // 2. The public key goes.
    cx.cloudfront.delete_public_key(id).await?;
    say(format!("[2/3] public key: {id} deleted"));
    // 3. The private key goes.
    let stored = cx.read_ring().await?;
    let mut document = stored.document;
    let kms = document.key(id).and_then(|key| key.kms_key_id.clone());
    if document.key(id).is_some() {
        document.keys.retain(|key| key.id != id);
        if document.next.as_deref() == Some(id) {
            // A rotation to it is abandoned with it.
            document.next = None;
        }
        cx.write_ring(&document, &stored.version).await?;
    }
    say(format!(
        "[3/3] key ring: {id} deleted from {}",
        cx.ring_source
    ));
    if let Some(kms) = kms {
        say(format!(
            "note: the KMS key {kms} is no longer used by cfmint; schedule its deletion \
             (aws kms schedule-key-deletion) when nothing else uses it"
        ));
    }
    say(format!("retired: {id}"));
    Ok(())
}
