//! The CloudFront API calls a rotation makes: the key group (read, and
//! written only over the ETag that was read), public keys, and the status
//! of the distributions that trust the group.

use std::time::{Duration, SystemTime};

use aws_sdk_cloudfront::Client;
use aws_sdk_cloudfront::error::ProvideErrorMetadata;
use aws_sdk_cloudfront::types::{KeyGroupConfig, PublicKeyConfig};

use crate::aws::describe;

/// CloudFront takes at most this many public keys in one key group.
pub const MAX_KEYS_PER_GROUP: usize = 5;

pub struct CloudFront {
    client: Client,
}

/// A key group as read, with the ETag to update it over.
#[derive(Debug, Clone)]
pub struct KeyGroup {
    pub id: String,
    pub name: String,
    pub comment: Option<String>,
    pub items: Vec<String>,
    pub etag: String,
}

#[derive(Debug, Clone)]
pub struct PublicKey {
    pub id: String,
    pub name: String,
    pub created: SystemTime,
    pub encoded_key: String,
}

#[derive(Debug, Clone)]
pub struct Distribution {
    pub id: String,
    /// `Deployed` or `InProgress`.
    pub status: String,
}

impl CloudFront {
    pub async fn new(timeout: Duration) -> Self {
        Self {
            client: crate::aws::cloudfront(timeout).await,
        }
    }

    pub async fn key_group(&self, id: &str) -> Result<KeyGroup, String> {
        let output = self
            .client
            .get_key_group()
            .id(id)
            .send()
            .await
            .map_err(|e| describe("GetKeyGroup", &e))?;
        let config = output
            .key_group()
            .and_then(|group| group.key_group_config())
            .ok_or_else(|| format!("GetKeyGroup {id}: no key group in the answer"))?;
        Ok(KeyGroup {
            id: id.to_owned(),
            name: config.name().to_owned(),
            comment: config.comment().map(str::to_owned),
            items: config.items().to_vec(),
            etag: output.e_tag().unwrap_or_default().to_owned(),
        })
    }

    /// Sets the group's keys, if it is still as `group` was read.
    pub async fn set_group_keys(&self, group: &KeyGroup, items: Vec<String>) -> Result<(), String> {
        let config = KeyGroupConfig::builder()
            .name(&group.name)
            .set_comment(group.comment.clone())
            .set_items(Some(items.clone()))
            .build()
            .map_err(|e| format!("UpdateKeyGroup: {e}"))?;
        match self
            .client
            .update_key_group()
            .id(&group.id)
            .if_match(&group.etag)
            .key_group_config(config)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // A retry of a call whose answer was lost finds its own change.
            Err(e) if e.code() == Some("PreconditionFailed") && self.holds(group, &items).await => {
                Ok(())
            }
            Err(e) if e.code() == Some("PreconditionFailed") => Err(format!(
                "key group {} changed after it was read (another rotation at the same time?); \
                 nothing was changed: run the command again",
                group.id
            )),
            Err(e) if e.code() == Some("TooManyPublicKeysInKeyGroup") => Err(format!(
                "key group {} would hold more than {MAX_KEYS_PER_GROUP} public keys; retire \
                 one first (cfmint keys retire --key-pair-id …)",
                group.id
            )),
            Err(e) => Err(describe("UpdateKeyGroup", &e)),
        }
    }

    /// Whether the group holds exactly `items` now.
    async fn holds(&self, group: &KeyGroup, items: &[String]) -> bool {
        let Ok(now) = self.key_group(&group.id).await else {
            return false;
        };
        let (mut now, mut items) = (now.items, items.to_vec());
        now.sort();
        items.sort();
        now == items
    }

    /// Every public key in the account.
    pub async fn public_keys(&self) -> Result<Vec<PublicKey>, String> {
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let output = self
                .client
                .list_public_keys()
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| describe("ListPublicKeys", &e))?;
            let Some(list) = output.public_key_list() else {
                break;
            };
            for key in list.items() {
                keys.push(PublicKey {
                    id: key.id().to_owned(),
                    name: key.name().to_owned(),
                    created: SystemTime::try_from(*key.created_time())
                        .unwrap_or(SystemTime::UNIX_EPOCH),
                    encoded_key: key.encoded_key().to_owned(),
                });
            }
            match list.next_marker().filter(|m| !m.is_empty()) {
                Some(next) => marker = Some(next.to_owned()),
                None => break,
            }
        }
        Ok(keys)
    }

    /// Uploads a public key (SPKI PEM); its id is the key pair id.
    pub async fn create_public_key(&self, name: &str, pem: &str) -> Result<String, String> {
        let config = PublicKeyConfig::builder()
            .caller_reference(caller_reference(pem))
            .name(name)
            .encoded_key(pem)
            .comment("cfmint keys rotate")
            .build()
            .map_err(|e| format!("CreatePublicKey: {e}"))?;
        let output = self
            .client
            .create_public_key()
            .public_key_config(config)
            .send()
            .await;
        let output = match output {
            Ok(output) => output,
            // Uploaded by a run at the same time (the reference is the
            // key's): that upload is this key's public key.
            Err(e) if e.code() == Some("PublicKeyAlreadyExists") => {
                let keys = self.public_keys().await?;
                return keys
                    .into_iter()
                    .find(|key| normalized(&key.encoded_key) == normalized(pem))
                    .map(|key| key.id)
                    .ok_or_else(|| describe("CreatePublicKey", &e));
            }
            Err(e) if e.code() == Some("TooManyPublicKeys") => {
                return Err("CreatePublicKey: the account holds as many public keys as \
                            CloudFront allows; delete unused ones (cfmint keys retire) or ask \
                            for a higher quota"
                    .to_owned());
            }
            Err(e) => return Err(describe("CreatePublicKey", &e)),
        };
        output
            .public_key()
            .map(|key| key.id().to_owned())
            .ok_or_else(|| "CreatePublicKey: no key in the answer".to_owned())
    }

    /// Deletes a public key no key group holds any more; gone already is fine.
    pub async fn delete_public_key(&self, id: &str) -> Result<(), String> {
        let etag = match self.client.get_public_key().id(id).send().await {
            Ok(output) => output.e_tag().unwrap_or_default().to_owned(),
            Err(e) if e.code() == Some("NoSuchPublicKey") => return Ok(()),
            Err(e) => return Err(describe("GetPublicKey", &e)),
        };
        match self
            .client
            .delete_public_key()
            .id(id)
            .if_match(etag)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchPublicKey") => Ok(()),
            Err(e) if e.code() == Some("PublicKeyInUse") => Err(format!(
                "public key {id} is still in a key group; remove it from every key group first"
            )),
            Err(e) => Err(describe("DeletePublicKey", &e)),
        }
    }

    /// The distributions whose cache behaviours trust the key group, with
    /// their deployment status.
    pub async fn distributions(&self, group_id: &str) -> Result<Vec<Distribution>, String> {
        let mut ids = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let output = self
                .client
                .list_distributions_by_key_group()
                .key_group_id(group_id)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| describe("ListDistributionsByKeyGroup", &e))?;
            let Some(list) = output.distribution_id_list() else {
                break;
            };
            ids.extend(list.items().iter().cloned());
            match list
                .next_marker()
                .filter(|m| list.is_truncated() && !m.is_empty())
            {
                Some(next) => marker = Some(next.to_owned()),
                None => break,
            }
        }
        let mut distributions = Vec::new();
        for id in ids {
            let output = self
                .client
                .get_distribution()
                .id(&id)
                .send()
                .await
                .map_err(|e| describe("GetDistribution", &e))?;
            let status = output
                .distribution()
                .map(|d| d.status().to_owned())
                .unwrap_or_default();
            distributions.push(Distribution { id, status });
        }
        Ok(distributions)
    }
}

/// The same key always gets the same reference, so CloudFront refuses a
/// second upload of it rather than making a twin.
fn caller_reference(pem: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, normalized(pem).as_bytes());
    let hex: String = digest.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("cfmint-{hex}")
}

/// A PEM without its line breaks and surrounding space, for comparing the
/// key CloudFront holds with the one the ring holds.
pub fn normalized(pem: &str) -> String {
    pem.split_whitespace().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn pems_compare_whatever_their_line_ends() {
        let a = "-----BEGIN PUBLIC KEY-----\nMIIB\nIjAN\n-----END PUBLIC KEY-----\n";
        let b = "-----BEGIN PUBLIC KEY-----\r\nMIIB\r\nIjAN\r\n-----END PUBLIC KEY-----";
        assert_eq!(super::normalized(a), super::normalized(b));
        assert_eq!(super::caller_reference(a), super::caller_reference(b));
        assert_ne!(super::caller_reference(a), super::caller_reference("other"));
    }
}
