//! The signer core: CloudFront policies, keys, signatures and verification.
//! No HTTP types live here; the service, the CLI and the edge all build on it.

mod backend;
mod encoding;
mod error;
mod keys;
mod pem;
mod policy;
mod query;
mod sign;
mod verify;
mod wildcard;

pub use backend::{
    Backend, GeneratedKey, HashAlgorithm, KeyAlgorithm, KeySpec, SigningKey, VerifyingKey,
};
pub use encoding::{decode as decode_base64, encode as encode_base64};
pub use error::{Error, ErrorKind};
pub use keys::{
    KeyPairId, KeyRing, KeySource, MAX_KEY_GROUP_SIZE, PrivateKey, PublicKey, PublicKeys, RSA_BITS,
};
pub use policy::{
    ParsedPolicy, Policy, PolicyBuilder, PolicyForm, parse as parse_policy, parse_cidr,
};
pub use query::{SIGNING_PARAMS, SplitUrl, split as split_signing_params};
pub use sign::{
    ALL_COOKIES, COOKIE_EXPIRES, COOKIE_HASH_ALGORITHM, COOKIE_KEY_PAIR_ID, COOKIE_POLICY,
    COOKIE_SIGNATURE, PolicyParam, SignedPolicy, check_url,
};
pub use verify::{
    CredentialSource, Denial, DenialKind, Inspection, Verdict, ViewerRequest, verify,
};
pub use wildcard::matches as wildcard_matches;
