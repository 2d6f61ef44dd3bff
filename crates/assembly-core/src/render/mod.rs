//! Render stage: the planned mix as block-readable audio ([`Mix`]), and the two-pass render
//! through loudness normalisation and the true-peak limiter into a sink
//! ([`render_mastered`], or its parts [`measure_mix`], [`plan_master`], [`render_final`]).

mod mix;
mod pass;

pub use mix::{Mix, Sources};
pub(crate) use pass::plan_master_from;
pub use pass::{
    MasterPlan, MixMeasurement, RenderOptions, RenderOutcome, RenderReport, measure_mix,
    plan_master, render_final, render_mastered,
};
