//! Keys in a PKCS#11 token (an HSM, a cloud HSM's client library, SoftHSM),
//! named by an RFC 7512 URI: `pkcs11:token=cfmint;object=cloudfront-2026`.
//!
//! RSA signs with `CKM_SHA1_RSA_PKCS` or `CKM_SHA256_RSA_PKCS` over the policy
//! bytes; P-256 with `CKM_ECDSA` over a digest computed here, the raw `r‖s`
//! re-encoded as the DER CloudFront takes. The public key is read from the
//! token's public key object with the same label and id.
//!
//! Module calls block, so [`RemoteKey::blocks`] is true: poll the futures on
//! threads that may block. Sessions are opened once, logged in once, and
//! reused by whichever thread signs; a removed token or a lost login is
//! reported as [`ErrorKind::Unavailable`] and the sessions are dropped, so the
//! next [`connect`](RemoteKey::connect) starts afresh.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use super::{BoxFuture, RemoteKey, ecdsa_raw_to_der, rsa_public_der};
use crate::backend::{Backend, HashAlgorithm, KeyAlgorithm, VerifyingKey};
use crate::error::{Error, ErrorKind};

/// The DER of P-256's OID, as `CKA_EC_PARAMS` holds it.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// The SubjectPublicKeyInfo of a P-256 key, up to the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// A PKCS#11 URI (RFC 7512) naming one private key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token`: the token label.
    pub token: Option<String>,
    /// `manufacturer`: the token manufacturer.
    pub manufacturer: Option<String>,
    /// `serial`: the token serial number.
    pub serial: Option<String>,
    /// `model`: the token model.
    pub model: Option<String>,
    /// `slot-id`: the slot number.
    pub slot_id: Option<u64>,
    /// `object`: the key's label.
    pub object: Option<String>,
    /// `id`: the key's `CKA_ID` bytes.
    pub id: Option<Vec<u8>>,
    /// `module-path`: the module to load, instead of the configured one.
    pub module_path: Option<PathBuf>,
}

impl FromStr for Pkcs11Uri {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix("pkcs11:")
            .ok_or("a PKCS#11 URI starts with pkcs11:")?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut uri = Self::default();
        for attribute in path.split(';').filter(|a| !a.is_empty()) {
            let (name, value) = attribute
                .split_once('=')
                .ok_or_else(|| format!("\"{attribute}\" is not name=value"))?;
            let bytes = percent_decode(value)?;
            let text =
                || String::from_utf8(bytes.clone()).map_err(|_| format!("{name} is not UTF-8"));
            match name {
                "token" => uri.token = Some(text()?),
                "manufacturer" => uri.manufacturer = Some(text()?),
                "serial" => uri.serial = Some(text()?),
                "model" => uri.model = Some(text()?),
                "object" => uri.object = Some(text()?),
                "id" => uri.id = Some(bytes),
                "slot-id" => {
                    uri.slot_id = Some(text()?.parse().map_err(|_| "slot-id is not a number")?)
                }
                "type" if text()? == "private" => {}
                "type" => {
                    return Err("type must be private: cfmint signs with a private key".into());
                }
                "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-manufacturer"
                | "slot-description" => {}
                other => return Err(format!("unknown attribute {other}")),
            }
        }
        for attribute in query.split('&').filter(|a| !a.is_empty()) {
            let (name, value) = attribute
                .split_once('=')
                .ok_or_else(|| format!("\"{attribute}\" is not name=value"))?;
            match name {
                "module-path" => {
                    let path = String::from_utf8(percent_decode(value)?)
                        .map_err(|_| "module-path is not UTF-8")?;
                    uri.module_path = Some(path.into());
                }
                "pin-value" | "pin-source" => {
                    return Err(format!(
                        "{name} does not belong in the URI, which is logged; give the PIN in \
                         keys.pkcs11.pin or its environment variable"
                    ));
                }
                other => return Err(format!("unknown query attribute {other}")),
            }
        }
        if uri.object.is_none() && uri.id.is_none() {
            return Err("name the key with object=LABEL or id=%XX...".into());
        }
        Ok(uri)
    }
}

fn percent_decode(value: &str) -> Result<Vec<u8>, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in \"{value}\""))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// How to reach the token: the module and the user PIN.
pub struct Pkcs11Options {
    /// The module (shared library), unless the URI names one.
    pub module: Option<PathBuf>,
    /// The user PIN; `None` for a token that needs no login.
    pub pin: Option<Zeroizing<String>>,
    /// Computes ECDSA digests and checks the signatures the token returns.
    pub backend: Backend,
}

/// Modules are initialised once per process, whatever number of keys use
/// them. The registry holds them weakly: once every key using a module has
/// dropped it (after the token went away, say), the module is finalised, and
/// the next connect initialises it afresh, which is what brings a token back.
fn module(path: &Path) -> Result<Arc<Pkcs11>, Error> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Weak<Pkcs11>>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(context) = modules.get(path).and_then(Weak::upgrade) {
        return Ok(context);
    }
    let context = Pkcs11::new(path).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot load the PKCS#11 module {}: {e}", path.display()),
        )
    })?;
    context
        .initialize(CInitializeArgs::OsThreads)
        .map_err(|e| ck_error(e, "initialising the module"))?;
    let context = Arc::new(context);
    modules.insert(path.to_owned(), Arc::downgrade(&context));
    Ok(context)
}

/// A key in a PKCS#11 token.
pub struct Pkcs11Key {
    uri_text: String,
    uri: Pkcs11Uri,
    module: PathBuf,
    pin: Option<Zeroizing<String>>,
    backend: Backend,
    device: Mutex<Option<Arc<Device>>>,
}

/// The token, once reached: the key's handle, and the idle sessions.
struct Device {
    key: ObjectHandle,
    algorithm: KeyAlgorithm,
    slot: Slot,
    context: Arc<Pkcs11>,
    sessions: Mutex<Vec<Session>>,
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("uri", &self.uri_text)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// The key `uri` names, through `options`. Nothing is loaded until it
    /// connects.
    pub fn new(uri: &str, options: Pkcs11Options) -> Result<Self, Error> {
        let parsed: Pkcs11Uri = uri
            .parse()
            .map_err(|e| Error::key(format!("PKCS#11 URI \"{uri}\": {e}")))?;
        let module = parsed
            .module_path
            .clone()
            .or(options.module)
            .ok_or_else(|| {
                Error::key(format!(
                    "PKCS#11 URI \"{uri}\": no module; set keys.pkcs11.module or module-path"
                ))
            })?;
        Ok(Self {
            uri_text: uri.to_owned(),
            uri: parsed,
            module,
            pin: options.pin,
            backend: options.backend,
            device: Mutex::new(None),
        })
    }

    fn device(&self) -> Result<Arc<Device>, Error> {
        self.device
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| Error::new(ErrorKind::Unavailable, "the token has not been reached"))
    }

    fn forget_device(&self) {
        self.device
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
    }

    /// Asks the token whether it is still there and the sessions logged in.
    fn check_now(&self) -> Result<(), Error> {
        let device = self.device()?;
        device
            .context
            .get_token_info(device.slot)
            .map_err(|e| self.failed(e, "reading token information"))?;
        let sessions = device
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(session) = sessions.first() {
            let state = session
                .get_session_info()
                .map(|info| info.session_state())
                .map_err(|e| e.to_string());
            let logged_in = matches!(state, Ok(SessionState::RoUser | SessionState::RwUser));
            if self.pin.is_some() && !logged_in {
                drop(sessions);
                self.forget_device();
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("PKCS#11: the session is no longer logged in ({state:?})"),
                ));
            }
        }
        Ok(())
    }

    fn find_slot(&self, context: &Pkcs11) -> Result<Slot, Error> {
        let slots = context
            .get_slots_with_token()
            .map_err(|e| ck_error(e, "listing slots"))?;
        let mut found = Vec::new();
        for slot in slots {
            if self.uri.slot_id.is_some_and(|id| id != slot.id()) {
                continue;
            }
            let info = context
                .get_token_info(slot)
                .map_err(|e| ck_error(e, "reading token information"))?;
            let wanted = |want: &Option<String>, have: &str| {
                want.as_deref().is_none_or(|want| want == have.trim_end())
            };
            if wanted(&self.uri.token, info.label())
                && wanted(&self.uri.manufacturer, info.manufacturer_id())
                && wanted(&self.uri.serial, info.serial_number())
                && wanted(&self.uri.model, info.model())
            {
                found.push(slot);
            }
        }
        match found.as_slice() {
            [slot] => Ok(*slot),
            [] => Err(Error::new(
                ErrorKind::Unavailable,
                "no token matching the URI is present",
            )),
            many => Err(Error::key(format!(
                "{} tokens match the URI; name one with token=, serial= or slot-id=",
                many.len()
            ))),
        }
    }

    fn find_object(
        &self,
        session: &Session,
        class: ObjectClass,
    ) -> Result<Vec<ObjectHandle>, Error> {
        let mut template = vec![Attribute::Class(class)];
        if let Some(label) = &self.uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &self.uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        session
            .find_objects(&template)
            .map_err(|e| ck_error(e, "finding the key"))
    }

    fn connect_now(&self) -> Result<Box<dyn VerifyingKey>, Error> {
        self.forget_device();
        let context = module(&self.module)?;
        let slot = self.find_slot(&context)?;
        let session = context
            .open_ro_session(slot)
            .map_err(|e| ck_error(e, "opening a session"))?;
        if let Some(pin) = &self.pin {
            let pin = AuthPin::from(pin.as_str().to_owned());
            match session.login(UserType::User, Some(&pin)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => return Err(ck_error(e, "logging in")),
            }
        }
        let key = match self
            .find_object(&session, ObjectClass::PRIVATE_KEY)?
            .as_slice()
        {
            [key] => *key,
            [] if self.pin.is_none() => {
                return Err(Error::key(
                    "no private key in the token matches the URI (no PIN was given, and \
                     private keys are visible only after login)",
                ));
            }
            [] => return Err(Error::key("no private key in the token matches the URI")),
            many => {
                return Err(Error::key(format!(
                    "{} private keys match the URI; add id= to name one",
                    many.len()
                )));
            }
        };
        let public = self.public_key(&session, key)?;
        let algorithm = public.algorithm();
        *self
            .device
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(Device {
            key,
            algorithm,
            slot,
            context,
            sessions: Mutex::new(vec![session]),
        }));
        Ok(public)
    }

    /// The public key object with the private key's label and id; for RSA,
    /// the private key's own modulus and exponent will do.
    fn public_key(
        &self,
        session: &Session,
        private: ObjectHandle,
    ) -> Result<Box<dyn VerifyingKey>, Error> {
        let attributes = |object, types: &[AttributeType]| {
            session
                .get_attributes(object, types)
                .map_err(|e| ck_error(e, "reading key attributes"))
        };
        let key_type = attributes(private, &[AttributeType::KeyType])?;
        let public_object = self.find_object(session, ObjectClass::PUBLIC_KEY)?;
        match key_type.first() {
            Some(Attribute::KeyType(kind)) if *kind == KeyType::RSA => {
                let object = public_object.first().copied().unwrap_or(private);
                let parts = attributes(
                    object,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )?;
                let (mut modulus, mut exponent) = (None, None);
                for part in parts {
                    match part {
                        Attribute::Modulus(n) => modulus = Some(n),
                        Attribute::PublicExponent(e) => exponent = Some(e),
                        _ => {}
                    }
                }
                let (Some(n), Some(e)) = (modulus, exponent) else {
                    return Err(Error::key("the token does not reveal the RSA public key"));
                };
                self.backend.load_public_der(rsa_public_der(&n, &e), false)
            }
            Some(Attribute::KeyType(kind)) if *kind == KeyType::EC => {
                let Some(object) = public_object.first().copied() else {
                    return Err(Error::key(
                        "no EC public key object with the private key's label and id",
                    ));
                };
                let parts = attributes(object, &[AttributeType::EcParams, AttributeType::EcPoint])?;
                let (mut params, mut point) = (None, None);
                for part in parts {
                    match part {
                        Attribute::EcParams(p) => params = Some(p),
                        Attribute::EcPoint(p) => point = Some(p),
                        _ => {}
                    }
                }
                if params.as_deref() != Some(&P256_PARAMS[..]) {
                    return Err(Error::key(
                        "an EC key not on P-256; CloudFront takes P-256 only",
                    ));
                }
                // CKA_EC_POINT is the point wrapped in a DER OCTET STRING.
                let point = point.unwrap_or_default();
                let raw = match point.as_slice() {
                    [0x04, 65, rest @ ..] if rest.len() == 65 => rest,
                    raw if raw.len() == 65 => raw,
                    _ => return Err(Error::key("cannot read the EC public point")),
                };
                let mut spki = P256_SPKI_PREFIX.to_vec();
                spki.extend_from_slice(raw);
                self.backend.load_public_der(spki, true)
            }
            _ => Err(Error::key("the key is neither RSA nor EC")),
        }
    }

    fn sign_now(&self, hash: HashAlgorithm, message: &[u8]) -> Result<Vec<u8>, Error> {
        let device = self.device()?;
        let idle = device
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let session = match idle {
            Some(session) => session,
            // The token is logged in while any session is open, so a new
            // session shares the login.
            None => device
                .context
                .open_ro_session(device.slot)
                .map_err(|e| self.failed(e, "opening a session"))?,
        };
        let signed = match device.algorithm {
            KeyAlgorithm::Rsa { .. } => {
                let mechanism = match hash {
                    HashAlgorithm::Sha1 => Mechanism::Sha1RsaPkcs,
                    HashAlgorithm::Sha256 => Mechanism::Sha256RsaPkcs,
                };
                session.sign(&mechanism, device.key, message)
            }
            KeyAlgorithm::EcdsaP256 => {
                let digest = self.backend.digest(hash, message);
                session.sign(&Mechanism::Ecdsa, device.key, &digest)
            }
        };
        let signature = signed.map_err(|e| self.failed(e, "signing"))?;
        device
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(session);
        match device.algorithm {
            KeyAlgorithm::EcdsaP256 => ecdsa_raw_to_der(&signature),
            KeyAlgorithm::Rsa { .. } => Ok(signature),
        }
    }

    /// A failed call: when the token is gone or logged out, its sessions
    /// are dropped so the next connect starts afresh.
    fn failed(&self, error: CkError, doing: &str) -> Error {
        let error = ck_error(error, doing);
        if error.kind() == ErrorKind::Unavailable {
            self.forget_device();
        }
        error
    }
}

impl RemoteKey for Pkcs11Key {
    fn store(&self) -> &'static str {
        "pkcs11"
    }

    fn location(&self) -> &str {
        &self.uri_text
    }

    fn blocks(&self) -> bool {
        true
    }

    fn connect(&self) -> BoxFuture<'_, Result<Box<dyn VerifyingKey>, Error>> {
        Box::pin(async move { self.connect_now() })
    }

    fn sign<'a>(
        &'a self,
        hash: HashAlgorithm,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<Vec<u8>, Error>> {
        Box::pin(async move { self.sign_now(hash, message) })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move { self.check_now() })
    }
}

/// A busy or out-of-memory token is [`ErrorKind::Throttled`]; everything
/// else that stops signing is [`ErrorKind::Unavailable`].
fn ck_error(error: CkError, doing: &str) -> Error {
    let kind = match &error {
        CkError::Pkcs11(RvError::SessionCount | RvError::DeviceMemory | RvError::HostMemory, _) => {
            ErrorKind::Throttled
        }
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, format!("PKCS#11 {doing}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_the_token_and_the_key() {
        let uri: Pkcs11Uri = "pkcs11:token=cfmint%20prod;object=cf-2026;id=%01%a2;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so"
            .parse()
            .unwrap();
        assert_eq!(uri.token.as_deref(), Some("cfmint prod"));
        assert_eq!(uri.object.as_deref(), Some("cf-2026"));
        assert_eq!(uri.id, Some(vec![0x01, 0xa2]));
        assert_eq!(
            uri.module_path.as_deref(),
            Some(Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
    }

    #[test]
    fn uris_that_would_leak_a_pin_or_name_nothing_are_refused() {
        for (uri, says) in [
            (
                "pkcs11:token=a;object=b?pin-value=1234",
                "pin-value does not belong",
            ),
            (
                "pkcs11:token=a;object=b?pin-source=file:/pin",
                "pin-source does not belong",
            ),
            ("pkcs11:token=a", "name the key"),
            ("pkcs:token=a;object=b", "starts with pkcs11:"),
            (
                "pkcs11:token=a;object=b;type=public",
                "type must be private",
            ),
            ("pkcs11:token=a;object=%zz", "bad percent escape"),
            (
                "pkcs11:token=a;object=b;colour=red",
                "unknown attribute colour",
            ),
        ] {
            let error = uri.parse::<Pkcs11Uri>().unwrap_err();
            assert!(error.contains(says), "{uri}: {error}");
        }
    }

    /// Whatever the configuration holds, parsing answers; it never panics
    /// (multi-byte text around `%` escapes, truncated escapes, empty parts).
    #[test]
    fn any_text_parses_or_is_refused_without_panicking() {
        let pieces = [
            "pkcs11:",
            "token=",
            "object=",
            "id=",
            ";",
            "?",
            "&",
            "=",
            "%",
            "%4",
            "%41",
            "%zz",
            "é",
            "漢",
            "module-path=",
            "slot-id=",
            "9999999999999999999999",
            "type=private",
            "pin-value=",
            "a",
            " ",
            "\u{0}",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(state % 9) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            let _ = text.parse::<Pkcs11Uri>();
        }
    }

    #[test]
    fn a_key_without_a_module_says_where_to_give_one() {
        let options = Pkcs11Options {
            module: None,
            pin: None,
            backend: Backend::default(),
        };
        let error = Pkcs11Key::new("pkcs11:token=a;object=b", options).unwrap_err();
        assert!(error.to_string().contains("keys.pkcs11.module"), "{error}");
    }
}
