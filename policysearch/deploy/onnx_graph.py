"""The ONNX graph of an exported network policy (`export.network_arrays`), node for node the
arithmetic of `deploy/loader.py` and of `TrainedPolicy.act(obs, deterministic=True)`:

    obs -> Sub(mean) -> Div(sqrt(var + eps)) -> Max(-clip) -> Min(clip)      (if normalised)
        -> [MatMul(W_i) -> Add(b_i) -> Tanh | Relu | Softplus] ... -> MatMul(W_L) -> Add(b_L)
        -> Max(low) -> Min(high)   (continuous: "action" float32 [batch, action_dim])
        -> ArgMax(axis 1)          (discrete:   "action" int64 [batch])

Opset 17; the model's metadata_props carry the export's meta (each value a string, JSON where it
is not one).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

OPSET = 17
ONNX_ACTIVATIONS = {"tanh": "Tanh", "relu": "Relu", "softplus": "Softplus"}


def network_model(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> Any:
    """The checked onnx.ModelProto of a network policy's arrays and meta."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def op(kind: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(kind, inputs, [output], name=output, **attrs))
        return output

    x = "obs"
    if bool(arrays["normalize_obs"]):
        std = np.sqrt(arrays["obs_var"] + arrays["eps"]).astype(np.float32)  # as the loader: (x - mean) / sqrt(var + eps)
        clip = float(arrays["obs_clip"])
        x = op("Sub", [x, const("obs_mean", arrays["obs_mean"])], "obs_centered")
        x = op("Div", [x, const("obs_std", std)], "obs_scaled")
        x = op("Max", [x, const("obs_clip_low", -clip)], "obs_clipped_low")
        x = op("Min", [x, const("obs_clip_high", clip)], "obs_normalized")
    layers = int(arrays["num_layers"])
    activation = ONNX_ACTIVATIONS[str(arrays["activation"])]
    for i in range(layers):
        x = op("MatMul", [x, const(f"W{i}", arrays[f"W{i}"])], f"layer{i}_matmul")
        x = op("Add", [x, const(f"b{i}", arrays[f"b{i}"])], f"layer{i}_out")
        if i < layers - 1:
            x = op(activation, [x], f"layer{i}_{activation.lower()}")
    obs_dim = int(meta["observation"]["shape"][0])
    if str(arrays["kind"]) == "categorical":
        op("ArgMax", [x], "action", axis=1, keepdims=0)
        output = helper.make_tensor_value_info("action", TensorProto.INT64, ["batch"])
    else:
        x = op("Max", [x, const("action_low", arrays["action_low"])], "action_clipped_low")
        op("Min", [x, const("action_high", arrays["action_high"])], "action")
        output = helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", len(arrays["action_low"])])
    graph = helper.make_graph(nodes, "policysearch_policy", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, ["batch", obs_dim])],
                              [output], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="policysearch",
                              producer_version=str(meta["policysearch_version"]))
    model.ir_version = 8  # readable by onnxruntime >= 1.10
    model.doc_string = f"{meta.get('algorithm') or 'policy'} on {meta['env_id']}: raw observation -> deterministic action"
    helper.set_model_props(model, {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})
    onnx.checker.check_model(model)
    return model
