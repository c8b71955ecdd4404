//! Keys by key pair id: PEM loading from files or environment strings, the
//! signing key ring with one active key, and the public key group used to
//! verify. Keys are parsed once; nothing here prints key material.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use zeroize::Zeroizing;

use super::backend::{Backend, HashAlgorithm, KeyAlgorithm, SigningKey, VerifyingKey};
use super::error::{Error, ErrorKind};
use super::id::KeyPairId;
use super::pem::{self, KeyDer};
use super::policy::{Policy, PolicyForm};
use super::remote::RemoteKey;
use super::sign::SignedPolicy;

/// RSA sizes CloudFront accepts; 1024 only for legacy key pairs.
pub const RSA_BITS: std::ops::RangeInclusive<u32> = 1024..=4096;
/// A CloudFront key group holds at most this many public keys.
pub const MAX_KEY_GROUP_SIZE: usize = 5;
/// A PEM key is a few kilobytes; anything much larger is not a key.
const MAX_PEM_BYTES: u64 = 64 * 1024;

/// Where key material came from, for messages. Never the material itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A PEM file.
    File(PathBuf),
    /// An environment variable holding PEM text.
    Env(String),
    /// Text or bytes handed over by the caller.
    Inline,
    /// A key store that signs on request.
    Store {
        /// The store's short name: `aws-kms`, `pkcs11`.
        store: &'static str,
        /// The key's ARN or URI.
        location: String,
    },
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(name) => write!(f, "environment variable {name}"),
            Self::Inline => f.write_str("inline PEM"),
            Self::Store { store, location } => write!(f, "{store} {location}"),
        }
    }
}

/// Reads PEM text from a file, bounded in size.
fn read_pem_file(path: &Path) -> Result<Zeroizing<String>, Error> {
    let mut text = Zeroizing::new(String::new());
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_PEM_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| Error::key(format!("cannot read {}: {e}", path.display())))?;
    if text.len() as u64 > MAX_PEM_BYTES {
        return Err(Error::key(format!(
            "{} is larger than {MAX_PEM_BYTES} bytes; not a PEM key",
            path.display()
        )));
    }
    Ok(text)
}

fn read_pem_env(name: &str) -> Result<Zeroizing<String>, Error> {
    std::env::var(name)
        .map(Zeroizing::new)
        .map_err(|e| Error::key(format!("environment variable {name}: {e}")))
}

fn check_signing_algorithm(algorithm: KeyAlgorithm) -> Result<(), Error> {
    match algorithm {
        KeyAlgorithm::Rsa { bits } if !RSA_BITS.contains(&bits) => Err(Error::key(format!(
            "RSA key of {bits} bits; CloudFront takes 1024 to 4096 bits (2048 recommended)"
        ))),
        _ => Ok(()),
    }
}

/// A private signing key with its key pair id: parsed into this process
/// (local), or held by a key store that signs on request (remote).
#[derive(Clone)]
pub struct PrivateKey {
    id: KeyPairId,
    source: KeySource,
    signer: Signer,
}

#[derive(Clone)]
enum Signer {
    Local {
        backend: Backend,
        key: Arc<dyn SigningKey>,
    },
    Remote(Remote),
}

/// A key in a key store, with the public key the store reported when last
/// reached. Clones share that state.
#[derive(Clone)]
pub struct Remote {
    key: Arc<dyn RemoteKey>,
    public: Arc<RwLock<Option<Arc<dyn VerifyingKey>>>>,
}

impl Remote {
    /// The key store's handle on the key.
    pub fn key(&self) -> &Arc<dyn RemoteKey> {
        &self.key
    }

    /// True once the store was reached and reported the public key, until
    /// it becomes unavailable.
    pub fn is_connected(&self) -> bool {
        self.public.read().is_ok_and(|public| public.is_some())
    }

    /// Reaches the store and keeps the public key it reports. For a store
    /// that [`blocks`](RemoteKey::blocks), poll this where blocking is allowed.
    pub async fn connect(&self) -> Result<KeyAlgorithm, Error> {
        let public = self.key.connect().await?;
        let algorithm = public.algorithm();
        check_signing_algorithm(algorithm)?;
        if let Ok(mut slot) = self.public.write() {
            *slot = Some(Arc::from(public));
        }
        Ok(algorithm)
    }

    /// Asks the store whether the key still works; an unavailable store
    /// disconnects the key.
    pub async fn check(&self) -> Result<(), Error> {
        if !self.is_connected() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the key store has not been reached yet",
            ));
        }
        let result = self.key.check().await;
        if result
            .as_ref()
            .is_err_and(|e| e.kind() == ErrorKind::Unavailable)
        {
            self.disconnect();
        }
        result
    }

    /// Forgets the public key: the key counts as unavailable until
    /// [`connect`](Self::connect) succeeds again.
    pub fn disconnect(&self) {
        if let Ok(mut slot) = self.public.write() {
            *slot = None;
        }
    }

    fn public(&self) -> Option<Arc<dyn VerifyingKey>> {
        self.public.read().ok().and_then(|public| public.clone())
    }

    /// Signs through the store and checks the signature against the public
    /// key before anyone sees it. An unavailable store disconnects the key.
    async fn sign(&self, hash: HashAlgorithm, message: &[u8]) -> Result<Vec<u8>, Error> {
        let Some(public) = self.public() else {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "the key store has not been reached yet",
            ));
        };
        let signature = match self.key.sign(hash, message).await {
            Ok(signature) => signature,
            Err(e) => {
                if e.kind() == ErrorKind::Unavailable {
                    self.disconnect();
                }
                return Err(e);
            }
        };
        if !public.verify(hash, message, &signature) {
            return Err(Error::crypto(
                "the key store returned a signature that does not verify under the key's \
                 public key",
            ));
        }
        Ok(signature)
    }
}

impl PrivateKey {
    /// Parses a PEM private key (PKCS#1, PKCS#8 or SEC1). `\n` escapes are
    /// accepted for keys passed through environment variables.
    pub fn from_pem(
        id: KeyPairId,
        pem_text: &str,
        source: KeySource,
        backend: Backend,
    ) -> Result<Self, Error> {
        let context = format!("key {id} ({source})");
        let key = match pem::decode(pem_text).map_err(Error::key) {
            Ok(KeyDer::Private(der)) => backend.load_private(&der),
            Ok(KeyDer::Public(_)) => Err(Error::key(
                "this is a public key; signing needs the private key",
            )),
            Err(e) => Err(e),
        }
        .map_err(|e| e.context(&context))?;
        let algorithm = key.algorithm();
        check_signing_algorithm(algorithm).map_err(|e| e.context(&context))?;
        if algorithm == (KeyAlgorithm::Rsa { bits: 1024 }) {
            tracing::warn!(
                "signing key {id} is RSA-1024: accepted for legacy key pairs only; \
                 CloudFront key groups take 2048-bit keys"
            );
        }
        Ok(Self {
            id,
            source,
            signer: Signer::Local {
                backend,
                key: Arc::from(key),
            },
        })
    }

    /// Loads a private key from a PEM file.
    pub fn from_file(
        id: KeyPairId,
        path: impl AsRef<Path>,
        backend: Backend,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        let source = KeySource::File(path.to_owned());
        let text = read_pem_file(path).map_err(|e| e.context(format!("key {id}")))?;
        Self::from_pem(id, &text, source, backend)
    }

    /// Parses PEM bytes, e.g. a key fetched from a secret store.
    pub fn from_pem_bytes(id: KeyPairId, pem: &[u8], backend: Backend) -> Result<Self, Error> {
        let text = std::str::from_utf8(pem)
            .map_err(|_| Error::key("the PEM is not UTF-8 text").context(format!("key {id}")))?;
        Self::from_pem(id, text, KeySource::Inline, backend)
    }

    /// Loads a private key from an environment variable holding PEM text.
    pub fn from_env(id: KeyPairId, name: &str, backend: Backend) -> Result<Self, Error> {
        let text = read_pem_env(name).map_err(|e| e.context(format!("key {id}")))?;
        Self::from_pem(id, &text, KeySource::Env(name.to_owned()), backend)
    }

    /// A key held by a key store. It signs once [`Remote::connect`] has
    /// reached the store; until then [`sign_async`](Self::sign_async) fails
    /// with [`ErrorKind::Unavailable`].
    pub fn remote(id: KeyPairId, key: Arc<dyn RemoteKey>) -> Self {
        let source = KeySource::Store {
            store: key.store(),
            location: key.location().to_owned(),
        };
        Self {
            id,
            source,
            signer: Signer::Remote(Remote {
                key,
                public: Arc::default(),
            }),
        }
    }

    /// The key pair id CloudFront knows the public half by.
    pub fn id(&self) -> &KeyPairId {
        &self.id
    }

    /// Where the key came from, or which store holds it.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The key's type and size; `None` for a remote key whose store has not
    /// been reached.
    pub fn algorithm(&self) -> Option<KeyAlgorithm> {
        match &self.signer {
            Signer::Local { key, .. } => Some(key.algorithm()),
            Signer::Remote(remote) => remote.public().map(|public| public.algorithm()),
        }
    }

    /// The crypto library that signs with a local key.
    pub fn backend(&self) -> Option<Backend> {
        match &self.signer {
            Signer::Local { backend, .. } => Some(*backend),
            Signer::Remote(_) => None,
        }
    }

    /// The key store's handle, for a remote key.
    pub fn remote_key(&self) -> Option<&Remote> {
        match &self.signer {
            Signer::Local { .. } => None,
            Signer::Remote(remote) => Some(remote),
        }
    }

    /// Signs a policy with a local key: canned when `form` allows and the
    /// policy fits, else custom. A remote key signs with
    /// [`sign_async`](Self::sign_async).
    pub fn sign(
        &self,
        policy: &Policy,
        form: PolicyForm,
        hash: HashAlgorithm,
    ) -> Result<SignedPolicy, Error> {
        let Signer::Local { key, .. } = &self.signer else {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("key {} ({}) signs with sign_async", self.id, self.source),
            ));
        };
        let json = policy.to_json();
        let signature = key.sign(hash, json.as_bytes())?;
        Ok(self.signed(policy, form, hash, &json, &signature))
    }

    /// Signs a policy with either kind of key. For a remote key whose store
    /// [`blocks`](RemoteKey::blocks), poll this where blocking is allowed.
    pub async fn sign_async(
        &self,
        policy: &Policy,
        form: PolicyForm,
        hash: HashAlgorithm,
    ) -> Result<SignedPolicy, Error> {
        let remote = match &self.signer {
            Signer::Local { .. } => return self.sign(policy, form, hash),
            Signer::Remote(remote) => remote,
        };
        let json = policy.to_json();
        let signature = remote
            .sign(hash, json.as_bytes())
            .await
            .map_err(|e| e.context(format!("key {} ({})", self.id, self.source)))?;
        Ok(self.signed(policy, form, hash, &json, &signature))
    }

    fn signed(
        &self,
        policy: &Policy,
        form: PolicyForm,
        hash: HashAlgorithm,
        json: &str,
        signature: &[u8],
    ) -> SignedPolicy {
        let canned = form.is_canned(policy);
        SignedPolicy::new(
            self.id.clone(),
            hash,
            if canned { None } else { Some(json) },
            policy.expires(),
            signature,
        )
    }

    /// The matching public key, for verifying what this key signed. A
    /// remote key has one once its store was reached.
    pub fn public_key(&self) -> Result<PublicKey, Error> {
        let key: Arc<dyn VerifyingKey> = match &self.signer {
            Signer::Local { key, .. } => Arc::from(key.verifying_key()?),
            Signer::Remote(remote) => remote.public().ok_or_else(|| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "key {} ({}): the key store has not reported the public key yet",
                        self.id, self.source
                    ),
                )
            })?,
        };
        Ok(PublicKey {
            id: self.id.clone(),
            key,
        })
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm())
            .field("backend", &self.backend())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A public key with its key pair id, as held in a CloudFront key group.
#[derive(Clone)]
pub struct PublicKey {
    id: KeyPairId,
    key: Arc<dyn VerifyingKey>,
}

impl PublicKey {
    /// Parses a PEM public key (SPKI or PKCS#1). A private key is accepted
    /// too, and its public half used.
    pub fn from_pem(
        id: KeyPairId,
        pem_text: &str,
        source: KeySource,
        backend: Backend,
    ) -> Result<Self, Error> {
        let context = format!("public key {id} ({source})");
        let key = match pem::decode(pem_text).map_err(Error::key) {
            Ok(KeyDer::Public(der)) => backend.load_public(&der),
            Ok(KeyDer::Private(der)) => backend
                .load_private(&der)
                .and_then(|private| private.verifying_key()),
            Err(e) => Err(e),
        }
        .map_err(|e| e.context(&context))?;
        check_signing_algorithm(key.algorithm()).map_err(|e| e.context(&context))?;
        Ok(Self {
            id,
            key: Arc::from(key),
        })
    }

    /// Loads a public key from a PEM file.
    pub fn from_file(
        id: KeyPairId,
        path: impl AsRef<Path>,
        backend: Backend,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        let source = KeySource::File(path.to_owned());
        let text = read_pem_file(path).map_err(|e| e.context(format!("public key {id}")))?;
        Self::from_pem(id, &text, source, backend)
    }

    /// The key pair id of this key in the key group.
    pub fn id(&self) -> &KeyPairId {
        &self.id
    }

    /// The key's type and size.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.key.algorithm()
    }

    /// True when `signature` signs `message` under this key.
    pub fn verify(&self, hash: HashAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify(hash, message, signature)
    }

    /// SPKI PEM, the form CloudFront's console takes.
    pub fn to_pem(&self) -> Result<String, Error> {
        self.key.to_pem()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm())
            .finish()
    }
}

/// Signing keys by id, one of them active.
#[derive(Debug, Clone)]
pub struct KeyRing {
    keys: Vec<PrivateKey>,
    active: usize,
}

impl KeyRing {
    /// Builds a ring; ids must be unique and `active` must be one of them.
    pub fn new(keys: Vec<PrivateKey>, active: &KeyPairId) -> Result<Self, Error> {
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|other| other.id == key.id) {
                return Err(Error::new(
                    ErrorKind::InvalidKeyRing,
                    format!("key pair id {} appears twice in the key ring", key.id),
                ));
            }
        }
        let active = keys
            .iter()
            .position(|key| &key.id == active)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidKeyRing,
                    format!("the active key pair id {active} is not among the loaded keys"),
                )
            })?;
        Ok(Self { keys, active })
    }

    /// The key that signs.
    pub fn active(&self) -> &PrivateKey {
        &self.keys[self.active]
    }

    /// A key by id.
    pub fn get(&self, id: &str) -> Option<&PrivateKey> {
        self.keys.iter().find(|key| key.id.as_str() == id)
    }

    /// All keys, in load order.
    pub fn keys(&self) -> &[PrivateKey] {
        &self.keys
    }

    /// Signs with the active key.
    pub fn sign(
        &self,
        policy: &Policy,
        form: PolicyForm,
        hash: HashAlgorithm,
    ) -> Result<SignedPolicy, Error> {
        self.active().sign(policy, form, hash)
    }

    /// The public halves of every key in the ring, for verification.
    pub fn public_keys(&self) -> Result<PublicKeys, Error> {
        PublicKeys::new(
            self.keys
                .iter()
                .map(PrivateKey::public_key)
                .collect::<Result<_, _>>()?,
        )
    }
}

/// A CloudFront key group: up to five public keys by id.
#[derive(Debug, Clone, Default)]
pub struct PublicKeys {
    keys: HashMap<String, PublicKey>,
}

impl PublicKeys {
    /// Builds a key group; ids must be unique and there may be at most five.
    pub fn new(keys: Vec<PublicKey>) -> Result<Self, Error> {
        if keys.len() > MAX_KEY_GROUP_SIZE {
            return Err(Error::new(
                ErrorKind::InvalidKeyRing,
                format!(
                    "{} public keys given; a CloudFront key group holds at most {MAX_KEY_GROUP_SIZE}",
                    keys.len()
                ),
            ));
        }
        let mut map = HashMap::with_capacity(keys.len());
        for key in keys {
            let id = key.id.as_str().to_owned();
            if map.insert(id.clone(), key).is_some() {
                return Err(Error::new(
                    ErrorKind::InvalidKeyRing,
                    format!("key pair id {id} appears twice in the key group"),
                ));
            }
        }
        Ok(Self { keys: map })
    }

    /// A key by the id a viewer presented.
    pub fn get(&self, id: &str) -> Option<&PublicKey> {
        self.keys.get(id)
    }

    /// How many keys the group holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True for a group without keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
