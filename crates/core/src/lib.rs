//! textback's pure core: the rules (`domain`), the setup file's parsing (`setup`) and the one
//! clock (`clock`), with the reference data they embed (area codes, state windows, names).
//! Nothing here does I/O beyond reading a setup file it is handed: decisions take `now` and
//! data and return a decision (docs/architecture.md).

pub mod clock;
pub mod domain;
pub mod setup;
