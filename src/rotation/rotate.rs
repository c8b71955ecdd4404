//! `cfmint keys rotate`: a new key signs, in the only safe order. The key
//! is staged in the ring, uploaded as a CloudFront public key, recorded in
//! the ring, added to the key group; once every distribution using the
//! group is deployed it becomes the active key, and the run ends when the
//! replicas report signing with it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use super::cloudfront::normalized;
use super::{Context, MAX_KEYS_PER_GROUP, inactive_since, say, span, wait_until};
use crate::keyring::document::{PendingKey, RingDocument, RingKey, format_time};
use crate::signer::{Backend, KeyPairId, KeySpec, PrivateKey};

/// Where the new key comes from.
pub enum NewKey {
    /// Made here; the private key is kept in the ring.
    Generate(KeySpec),
    /// A private key in a PEM file, copied into the ring.
    PemFile(PathBuf),
    /// A key in AWS KMS; the ring holds its id.
    Kms(String),
}

pub struct RotatePlan {
    pub new_key: NewKey,
    /// The new public key's name in CloudFront, before a timestamp.
    pub name: String,
    pub deploy_timeout: Duration,
    pub replica_timeout: Duration,
    pub dry_run: bool,
    pub backend: Backend,
    /// `cloudfront.hash_algorithm = "sha1"`, which KMS keys cannot sign.
    pub sha1: bool,
}

const STEPS: usize = 7;

fn step(n: usize, line: impl AsRef<str>) {
    say(format!("[{n}/{STEPS}] {}", line.as_ref()));
}

pub async fn rotate(cx: &Context, plan: &RotatePlan) -> Result<(), String> {
    let stored = cx.read_ring().await?;
    let group = cx.cloudfront.key_group(&cx.key_group_id).await?;
    let mut document = stored.document;
    let mut version = stored.version;
    let previous = document.active.clone();
    say(format!(
        "key ring: {}, signing with {}; key group {} ({}): {} of {MAX_KEYS_PER_GROUP} keys",
        cx.ring_source,
        previous.as_deref().unwrap_or("no key yet"),
        group.id,
        group.name,
        group.items.len()
    ));

    // A rotation that stopped is finished, not started again.
    let mut target = document.next.clone();
    // A rotation that stopped while the replicas took the new ring is
    // finished by waiting for them, not by starting another.
    if let (None, None, Some(active)) = (&target, &document.pending, &document.active)
        && !cx.replicas.is_empty()
    {
        let reports = cx.replicas.reports().await;
        if reports
            .iter()
            .any(|(_, report)| report.as_ref().map_or(true, |r| &r.active != active))
        {
            say(format!(
                "a replica does not sign with {active} yet: finishing the rotation to it \
                 before starting another"
            ));
            step(
                7,
                format!("replicas: waiting until every one signs with {active}"),
            );
            wait_for_replicas(cx, active, plan.replica_timeout).await?;
            return finished(cx, active).await;
        }
    }
    let taken = match &plan.new_key {
        NewKey::Generate(_) => None,
        key => Some(take(key, plan).await?),
    };

    // The quota first: a full key group is a reason to stop before anything
    // is made.
    let in_group = target.as_ref().is_some_and(|id| group.items.contains(id));
    if !in_group && group.items.len() >= MAX_KEYS_PER_GROUP {
        return Err(full_group(cx, &document, &group.items));
    }

    // 1. The new key, staged in the ring before CloudFront hears of it, so
    // no public key exists whose private key could be lost.
    if let Some(id) = &target {
        step(1, format!("new key: {id} is already under way"));
    } else if let Some(pending) = &document.pending {
        if let Some(taken) = &taken
            && normalized(&taken.public_key) != normalized(&pending.public_key)
        {
            return Err(
                "a rotation with another key is under way (the ring's `pending`); run \
                 without --private-key or --kms-key-id to finish it first"
                    .to_owned(),
            );
        }
        step(1, "new key: staged by an earlier run");
    } else {
        if plan.dry_run {
            step(1, "would stage a new key in the ring");
            return plan_rest(2);
        }
        let pending = match &taken {
            Some(taken) => taken.clone(),
            None => generate(plan)?,
        };
        document.pending = Some(pending);
        version = cx.write_ring(&document, &version).await?;
        step(1, format!("new key: staged in {}", cx.ring_source));
    }
    if let Some(id) = &target {
        if let Some(taken) = &taken {
            let keys = cx.cloudfront.public_keys().await?;
            let holds = keys.iter().find(|key| &key.id == id);
            if holds
                .is_some_and(|key| normalized(&key.encoded_key) != normalized(&taken.public_key))
            {
                return Err(format!(
                    "a rotation to {id} is under way with another key; run without \
                     --private-key or --kms-key-id to finish it first"
                ));
            }
        }
        step(2, format!("public key: {id}"));
        step(3, format!("key ring: holds {id}"));
    } else {
        // 2. The public key: the one an earlier run uploaded, or a new one.
        let pending = document.pending.clone().expect("staged above");
        let keys = cx.cloudfront.public_keys().await?;
        let existing = keys
            .iter()
            .find(|key| normalized(&key.encoded_key) == normalized(&pending.public_key));
        let id = match existing {
            Some(key) => {
                step(
                    2,
                    format!("public key: {} (uploaded by an earlier run)", key.id),
                );
                key.id.clone()
            }
            None if plan.dry_run => {
                step(2, "would upload the public key to CloudFront");
                return plan_rest(3);
            }
            None => {
                let name = public_key_name(&plan.name);
                let id = cx
                    .cloudfront
                    .create_public_key(&name, &pending.public_key)
                    .await?;
                step(2, format!("public key: created {id} ({name})"));
                id
            }
        };
        // 3. The key pair id recorded with the key.
        if plan.dry_run {
            step(3, format!("would record {id} in the ring"));
            return plan_rest(4);
        }
        document.keys.push(RingKey {
            id: id.clone(),
            private_key: pending.private_key.clone(),
            kms_key_id: pending.kms_key_id.clone(),
            ..RingKey::default()
        });
        document.pending = None;
        document.next = Some(id.clone());
        cx.write_ring(&document, &version).await?;
        step(3, format!("key ring: holds {id}, not signing yet"));
        target = Some(id);
    }
    let id = target.expect("known by now");

    // 4. Trusted by the key group.
    if in_group {
        step(4, format!("key group: trusts {id}"));
    } else if plan.dry_run {
        step(4, format!("would add {id} to key group {}", group.id));
        return plan_rest(5);
    } else {
        // Read again: the ETag must be the group's as it is now.
        let group = cx.cloudfront.key_group(&cx.key_group_id).await?;
        if !group.items.contains(&id) {
            if group.items.len() >= MAX_KEYS_PER_GROUP {
                return Err(full_group(cx, &document, &group.items));
            }
            let mut items = group.items.clone();
            items.push(id.clone());
            cx.cloudfront.set_group_keys(&group, items).await?;
        }
        step(4, format!("key group: added {id} to {}", group.id));
    }

    // 5. Every distribution trusting the group has it.
    if plan.dry_run {
        step(
            5,
            "would wait until every distribution using the key group is deployed",
        );
        return plan_rest(6);
    }
    step(
        5,
        "distributions: waiting until every one using the key group is deployed",
    );
    wait_until(
        "the distributions to deploy",
        plan.deploy_timeout,
        cx.check_every,
        || async {
            let distributions = cx.cloudfront.distributions(&cx.key_group_id).await?;
            let waiting: Vec<String> = distributions
                .iter()
                .filter(|d| d.status != "Deployed")
                .map(|d| format!("{} {}", d.id, d.status))
                .collect();
            let progress = if distributions.is_empty() {
                format!(
                    "no distribution uses key group {} (nothing to wait for)",
                    cx.key_group_id
                )
            } else if waiting.is_empty() {
                format!("all {} deployed", distributions.len())
            } else {
                format!(
                    "{} of {} deployed; waiting for {}",
                    distributions.len() - waiting.len(),
                    distributions.len(),
                    waiting.join(", ")
                )
            };
            Ok((waiting.is_empty(), progress))
        },
    )
    .await?;

    // 6. The new key signs; the old one starts retiring.
    let stored = cx.read_ring().await?;
    let (mut document, version) = (stored.document, stored.version);
    let old = document.active.clone();
    if old.as_deref() == Some(id.as_str()) {
        step(6, format!("key ring: {id} is the active key"));
    } else {
        activate(&mut document, &id)?;
        cx.write_ring(&document, &version).await?;
        step(
            6,
            format!(
                "key ring: {id} is the active key (was {})",
                old.as_deref().unwrap_or("none")
            ),
        );
    }

    // 7. The replicas sign with it.
    if cx.replicas.is_empty() {
        step(
            7,
            format!(
                "replicas: none given (--replica); they take the new ring within \
                 keys.secret_poll_interval ({})",
                span(cx.poll_interval)
            ),
        );
    } else {
        step(
            7,
            format!("replicas: waiting until every one signs with {id}"),
        );
        wait_for_replicas(cx, &id, plan.replica_timeout).await?;
    }
    finished(cx, &id).await
}

/// Waits until every replica reports signing with `id`.
async fn wait_for_replicas(cx: &Context, id: &str, limit: Duration) -> Result<(), String> {
    wait_until("the replicas", limit, cx.check_every, || async {
        let reports = cx.replicas.reports().await;
        let behind: Vec<String> = reports
            .iter()
            .filter_map(|(url, report)| match report {
                Ok(report) if report.active == id => None,
                Ok(report) => Some(format!("{url} signs with {}", report.active)),
                Err(e) => Some(format!("{url}: {e}")),
            })
            .collect();
        let progress = format!(
            "{} of {} sign with {id}{}{}",
            reports.len() - behind.len(),
            reports.len(),
            if behind.is_empty() { "" } else { "; " },
            behind.join("; ")
        );
        Ok((behind.is_empty(), progress))
    })
    .await
}

/// The closing lines: what signs, and when the keys it replaced may go.
async fn finished(cx: &Context, id: &str) -> Result<(), String> {
    let stored = cx.read_ring().await?;
    let retiring: Vec<String> = stored
        .document
        .keys
        .iter()
        .filter_map(|key| {
            let since = inactive_since(&stored.document, &key.id)?;
            Some(format!(
                "{} may be retired after {} (cfmint keys retire --key-pair-id {})",
                key.id,
                format_time(cx.retirable_at(since, super::DEFAULT_MARGIN)),
                key.id
            ))
        })
        .collect();
    say(format!("rotated: {id} signs"));
    for line in retiring {
        say(format!("  {line}"));
    }
    Ok(())
}

/// Makes `id` the active key; the key it replaces is marked with the time
/// it stopped signing.
fn activate(document: &mut RingDocument, id: &str) -> Result<(), String> {
    if document.key(id).is_none() {
        return Err(format!("{id} is no longer in the key ring; run again"));
    }
    let now = format_time(SystemTime::now());
    if let Some(old) = document.active.clone()
        && let Some(key) = document.keys.iter_mut().find(|key| key.id == old)
    {
        key.inactive_since = Some(now);
    }
    if let Some(key) = document.keys.iter_mut().find(|key| key.id == id) {
        key.inactive_since = None;
    }
    document.active = Some(id.to_owned());
    document.next = None;
    Ok(())
}

fn plan_rest(from: usize) -> Result<(), String> {
    let rest = [
        "upload the public key to CloudFront",
        "record the key pair id in the ring",
        "add it to the key group",
        "wait until every distribution using the key group is deployed",
        "make it the active key in the ring",
        "wait until the replicas sign with it",
    ];
    for (n, what) in rest.iter().enumerate().skip(from - 2) {
        step(n + 2, format!("would {what}"));
    }
    say("dry run: nothing was changed");
    Ok(())
}

fn full_group(cx: &Context, document: &RingDocument, items: &[String]) -> String {
    // Oldest first; within one second, the one added to the group first.
    let mut retiring: Vec<(SystemTime, usize, &String)> = items
        .iter()
        .enumerate()
        .filter_map(|(n, id)| inactive_since(document, id).map(|since| (since, n, id)))
        .collect();
    retiring.sort();
    let advice = match retiring.first() {
        Some((since, _, id)) => format!(
            "retire one first: the oldest retiring key is {id}, retirable after {} \
             (cfmint keys retire --key-pair-id {id})",
            format_time(cx.retirable_at(*since, super::DEFAULT_MARGIN))
        ),
        None => "retire one first (cfmint keys retire --key-pair-id …)".to_owned(),
    };
    format!(
        "key group {} already holds {} public keys, the most CloudFront allows; {advice}",
        cx.key_group_id,
        items.len()
    )
}

fn public_key_name(prefix: &str) -> String {
    let stamp: String = format_time(SystemTime::now())
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    format!("{prefix}-{stamp}")
}

fn generate(plan: &RotatePlan) -> Result<PendingKey, String> {
    let generated = plan
        .backend
        .generate(plan_spec(&plan.new_key))
        .map_err(|e| format!("cannot make a key: {e}"))?;
    Ok(PendingKey {
        private_key: Some(generated.private_pem),
        kms_key_id: None,
        public_key: generated.public_pem,
    })
}

fn plan_spec(key: &NewKey) -> KeySpec {
    match key {
        NewKey::Generate(spec) => *spec,
        _ => KeySpec::Rsa { bits: 2048 },
    }
}

/// A key given on the command line, with its public half.
async fn take(key: &NewKey, plan: &RotatePlan) -> Result<PendingKey, String> {
    let id = KeyPairId::new("KNEW").expect("a valid id");
    match key {
        NewKey::Generate(_) => unreachable!("generated, not taken"),
        NewKey::PemFile(path) => {
            let private =
                PrivateKey::from_file(id, path, plan.backend).map_err(|e| e.to_string())?;
            let public = private
                .public_key()
                .and_then(|public| public.to_pem())
                .map_err(|e| e.to_string())?;
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(PendingKey {
                private_key: Some(Zeroizing::new(text)),
                kms_key_id: None,
                public_key: public,
            })
        }
        NewKey::Kms(key_id) => {
            if plan.sha1 {
                return Err(
                    "--kms-key-id: cloudfront.hash_algorithm is sha1, and KMS signs over \
                     SHA-256 only"
                        .to_owned(),
                );
            }
            Ok(PendingKey {
                private_key: None,
                kms_key_id: Some(key_id.clone()),
                public_key: kms_public_key(key_id, plan.backend).await?,
            })
        }
    }
}

#[cfg(feature = "aws-kms")]
async fn kms_public_key(key_id: &str, backend: Backend) -> Result<String, String> {
    let store = crate::signer::remote::kms::KmsStore::new(backend, Duration::from_secs(10));
    let key = PrivateKey::remote(
        KeyPairId::new("KNEW").expect("a valid id"),
        std::sync::Arc::new(store.key(key_id)),
    );
    let remote = key.remote_key().expect("a remote key");
    crate::keyring::connect_key(remote, Duration::from_secs(10))
        .await
        .map_err(|e| format!("--kms-key-id {key_id}: {e}"))?;
    key.public_key()
        .and_then(|public| public.to_pem())
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "aws-kms"))]
async fn kms_public_key(_: &str, _: Backend) -> Result<String, String> {
    Err(format!("--kms-key-id: {}", crate::config::KMS_NOT_BUILT))
}
