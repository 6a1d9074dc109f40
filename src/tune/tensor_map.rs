//! Tensor maps for TMA main loops ([`crate::codegen::TensorMapPlan`]): the
//! 128-byte `CUtensorMap` a kernel takes by value, encoded on the host by
//! the driver (`cuTensorMapEncodeTiled`). The generated runtime carries its
//! own copy of this (it cannot call prism); both follow the plan's rules.

use cudarc::driver::DeviceRepr;
use cudarc::driver::sys::{
    self, CUtensorMapDataType, CUtensorMapFloatOOBfill, CUtensorMapInterleave,
    CUtensorMapL2promotion, CUtensorMapSwizzle,
};

use crate::ir::DType;

/// A `CUtensorMap` as a kernel parameter (`prism::TensorMap`: 128 bytes,
/// 64-byte aligned).
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub struct TensorMapArg(pub sys::CUtensorMap);

// SAFETY: plain bytes with the layout and alignment of the kernel's
// `prism::TensorMap` parameter.
unsafe impl DeviceRepr for TensorMapArg {}

/// The map of the row-major `rows` × `cols` tensor of `dtype` at device
/// address `ptr`, in boxes of `box_rows` × `box_cols` elements in the
/// swizzle as wide as a box row (128 or 32 bytes) and zeros outside;
/// `None` where TMA cannot address it (not a 16-bit dtype, a pointer or
/// row stride not a multiple of 16 bytes, an extent out of range, a box
/// row of another width) or the driver refuses.
pub fn encode(
    ptr: u64,
    dtype: DType,
    rows: u64,
    cols: u64,
    box_rows: u32,
    box_cols: u32,
) -> Option<TensorMapArg> {
    let data_type = match dtype {
        DType::F16 => CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
        DType::BF16 => CUtensorMapDataType::CU_TENSOR_MAP_DATA_TYPE_BFLOAT16,
        _ => return None,
    };
    let stride = cols.checked_mul(2)?;
    let fits = |x: u64| (1..=u64::from(u32::MAX)).contains(&x);
    if !ptr.is_multiple_of(16)
        || !stride.is_multiple_of(16)
        || stride >= 1 << 40
        || !fits(rows)
        || !fits(cols)
    {
        return None;
    }
    if !(1..=256).contains(&box_rows) {
        return None;
    }
    let swizzle = match u64::from(box_cols) * 2 {
        128 => CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_128B,
        32 => CUtensorMapSwizzle::CU_TENSOR_MAP_SWIZZLE_32B,
        _ => return None,
    };
    let dims = [cols, rows];
    let strides = [stride];
    let boxes = [box_cols, box_rows];
    let element_strides = [1u32, 1];
    let mut map = TensorMapArg(sys::CUtensorMap { opaque: [0; 16] });
    // SAFETY: every pointer argument points at a live local array of the
    // rank's length (2, and 1 stride); the driver only writes `map`.
    let r = unsafe {
        sys::cuTensorMapEncodeTiled(
            &mut map.0,
            data_type,
            2,
            ptr as *mut std::ffi::c_void,
            dims.as_ptr(),
            strides.as_ptr(),
            boxes.as_ptr(),
            element_strides.as_ptr(),
            CUtensorMapInterleave::CU_TENSOR_MAP_INTERLEAVE_NONE,
            swizzle,
            CUtensorMapL2promotion::CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
            CUtensorMapFloatOOBfill::CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE,
        )
    };
    (r == sys::CUresult::CUDA_SUCCESS).then_some(map)
}
