"""Guided Policy Search (Levine and Koltun 2013): the settings (`config`), the importance-sampled
objective (`objective`), the sample set (`samples`), the policy's input (`inputs`), the noisy
example policy as a guiding distribution (`example`), the frozen state of
Algorithm 1 (`state`) and its loop (`loop`: `make_gps(config, problem)` -> `init`, `iteration`).
The problems it runs on (dynamics models, costs, DDP) live with the envs (`envs.problems`).
The JAX modules are imported on first use (`policysearch.lazy`)."""

from policysearch.algos.gps.config import GPSConfig
from policysearch.lazy import lazy_exports

_LOOP = "policysearch.algos.gps.loop"
_SAMPLES = "policysearch.algos.gps.samples"
__getattr__ = lazy_exports(__name__, {
    **dict.fromkeys(("GPS", "PolicyAct", "controller_act", "make_gps", "make_policy", "policy_cost", "run_gps"), _LOOP),
    **dict.fromkeys(("SampleStore", "Source", "build_sample_set", "identity", "observation_stats"), _SAMPLES),
    **dict.fromkeys(("OBS_CLIP", "PolicyInput"), "policysearch.algos.gps.inputs"),
    **dict.fromkeys(("ExampleGuide", "example_guide"), "policysearch.algos.gps.example"),
    "GPSState": "policysearch.algos.gps.state",
})

__all__ = ["GPS", "ExampleGuide", "GPSConfig", "GPSState", "OBS_CLIP", "PolicyAct", "PolicyInput", "SampleStore", "Source", "build_sample_set",
           "controller_act", "example_guide", "identity", "make_gps", "make_policy", "observation_stats", "policy_cost", "run_gps"]
