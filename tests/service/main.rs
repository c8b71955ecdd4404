//! Black-box tests of `cfmint serve` over a real TCP port.

mod behaviour;
mod harness;
