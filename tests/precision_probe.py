"""What a built model and its optimizer actually compute in: test-side probes of the float32 guarantees
of ``gan_seg_aug.training.precision`` (losses, scores, optimizer state in float32 under mixed_bfloat16)."""
import keras


def current_precision() -> str:
    return keras.config.dtype_policy().name


def precision_report(model) -> dict:
    """What a built model actually computes in: ``{"compute": {dtype: n_layers}, "variables":
    {dtype: n_variables}, "output": [dtype of each output]}`` -- for logs and for tests of the float32
    guarantees."""
    compute, variables = {}, {}
    for layer in _all_layers(model):
        if type(layer).__name__ != "InputLayer":
            compute[layer.compute_dtype] = compute.get(layer.compute_dtype, 0) + 1
    for v in model.variables:
        variables[v.dtype] = variables.get(v.dtype, 0) + 1
    outputs = model.outputs if isinstance(model.outputs, (list, tuple)) else [model.outputs]
    return {"compute": compute, "variables": variables, "output": [o.dtype for o in outputs]}


def _all_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer is not model:
            yield from _all_layers(layer)
        else:
            yield layer


def optimizer_state_dtypes(optimizer) -> set:
    """Dtypes of the optimizer's floating-point state (moments); should be {"float32"}."""
    return {v.dtype for v in optimizer.variables if "float" in str(v.dtype)}
