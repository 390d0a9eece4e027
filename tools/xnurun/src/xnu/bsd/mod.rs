//! XNU's BSD class: the system-call table (`table`), the calls xnurun
//! answers (`calls`) and the faults `--fault` injects into them (`fault`).
//! Each architecture's convention turns a call's
//! [`Outcome`](crate::xnu::outcome::Outcome) into registers.

pub mod calls;
pub mod fault;
pub mod table;
