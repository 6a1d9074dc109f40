//! μGraph → CUDA C++ (being written).

use super::{CodegenError, WorkloadKernels};
use crate::ir::{Target, Workload};

pub fn generate(workload: &Workload, _target: &Target) -> Result<WorkloadKernels, CodegenError> {
    Err(CodegenError::Unsupported {
        workload: workload.name.clone(),
        message: "code generation is being written".into(),
    })
}
