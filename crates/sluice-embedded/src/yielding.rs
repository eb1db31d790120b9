//! Every operator yields to the scheduler between batches.
//!
//! DataFusion's own `EnsureCooperative` rule makes sources yield, but an
//! operator that produces many batches from one input batch — a cross
//! join, an unnest — can run for minutes without returning to tokio. Such
//! a task cannot be aborted (cancel and shutdown wait for its next yield)
//! and keeps its worker thread from every other query. Wrapping each
//! operator in `CooperativeExec` spends one unit of tokio's task budget
//! per batch, so a task yields at least every few hundred batches.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;

#[derive(Debug, Default)]
pub struct YieldEverywhere;

impl PhysicalOptimizerRule for YieldEverywhere {
    fn name(&self) -> &str {
        "sluice_yield_everywhere"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if node.is::<CooperativeExec>() {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(Arc::new(CooperativeExec::new(node))))
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}
