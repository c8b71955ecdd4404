//! `cfmint keys status`: the key group, each key's state, age and the time
//! it may be retired; the distributions trusting the group; what each
//! replica signs with.

use std::time::{Duration, SystemTime};

use super::{Context, KeyState, MAX_KEYS_PER_GROUP, inactive_since, say, span};
use crate::keyring::document::format_time;

/// Prints the state; `margin` is the one `retire` adds.
pub async fn status(cx: &Context, margin: Duration) -> Result<(), String> {
    let stored = cx.read_ring().await?;
    let document = &stored.document;
    let group = cx.cloudfront.key_group(&cx.key_group_id).await?;
    let public_keys = cx.cloudfront.public_keys().await?;
    let now = SystemTime::now();
    say(format!(
        "key group {} ({}): {} of {MAX_KEYS_PER_GROUP} keys",
        group.id,
        group.name,
        group.items.len()
    ));
    let mut ids: Vec<&String> = group.items.iter().collect();
    ids.extend(
        document
            .keys
            .iter()
            .map(|key| &key.id)
            .filter(|id| !group.items.contains(id)),
    );
    for id in ids {
        let public_key = public_keys.iter().find(|key| &key.id == id);
        let age = public_key
            .and_then(|key| now.duration_since(key.created).ok())
            .map_or("age unknown".to_owned(), |age| format!("age {}", span(age)));
        let state = KeyState::of(document, id);
        let mut notes = Vec::new();
        if !group.items.contains(id) {
            notes.push("not in the key group: CloudFront refuses its signatures".to_owned());
        }
        if public_key.is_none() {
            notes.push("no such CloudFront public key".to_owned());
        }
        match state {
            None => notes.push("not in the key ring".to_owned()),
            Some(KeyState::Retiring) => {
                // Without the time it stopped signing, from when it was made.
                let since = inactive_since(document, id).or(public_key.map(|key| key.created));
                let at = since.map(|since| cx.retirable_at(since, margin));
                notes.push(match at.map(|at| (at, at.duration_since(now))) {
                    Some((at, Ok(left))) => format!(
                        "may be retired after {} (in {})",
                        format_time(at),
                        span(left)
                    ),
                    _ => "may be retired now".to_owned(),
                });
            }
            Some(KeyState::Verifying) => {
                notes.push("waiting to become active (cfmint keys rotate)".to_owned())
            }
            Some(KeyState::Active) => {}
        }
        say(format!(
            "  {id:<20} {:<10} {age:<14} {}",
            state.map_or("-", KeyState::name),
            notes.join("; ")
        ));
    }
    if document.pending.is_some() {
        say(
            "  (a new key is staged in the ring, not yet uploaded: cfmint keys rotate finishes it)",
        );
    }
    let distributions = cx.cloudfront.distributions(&group.id).await?;
    if distributions.is_empty() {
        say("distributions using the key group: none");
    } else {
        say("distributions using the key group:");
        for distribution in &distributions {
            say(format!("  {:<20} {}", distribution.id, distribution.status));
        }
    }
    say(format!(
        "key ring: {}, version {}",
        cx.ring_source, stored.version
    ));
    if cx.replicas.is_empty() {
        say("replicas: none given (--replica)");
    } else {
        say("replicas:");
        for (url, report) in cx.replicas.reports().await {
            say(match report {
                Ok(report) => {
                    let current = report.ring_version.as_deref() == Some(stored.version.as_str());
                    format!(
                        "  {url}: signs with {}, {} keys, ring version {}{}",
                        report.active,
                        report.keys.len(),
                        report.ring_version.as_deref().unwrap_or("none"),
                        if current {
                            " (current)"
                        } else {
                            " (not the current one)"
                        }
                    )
                }
                Err(e) => format!("  {url}: {e}"),
            });
        }
    }
    Ok(())
}
