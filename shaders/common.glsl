// Shared declarations for invedit's compute shaders.
//
// Tensors are reached through buffer device addresses passed in push
// constants (GL_EXT_buffer_reference): no descriptor sets, and no
// maxStorageBufferRange limit on tensor size. Index with uint (< 2^32 elements).
//
// Weight tensors may be fp16 (compile with -DW_F16); activations are fp32 and
// every reduction accumulates in fp32.
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_scalar_block_layout : require

layout(buffer_reference, scalar, buffer_reference_align = 4) buffer F32 { float v[]; };
layout(buffer_reference, scalar, buffer_reference_align = 16) buffer F32x4 { vec4 v[]; };
layout(buffer_reference, scalar, buffer_reference_align = 2) buffer F16 { float16_t v[]; };
layout(buffer_reference, scalar, buffer_reference_align = 4) buffer I32 { int v[]; };

// The weight type: W(addr).v[i] reads one element; load_w() returns fp32.
#ifdef W_F16
#define WBUF F16
#else
#define WBUF F32
#endif
#define load_w(buf, i) float((buf).v[i])
