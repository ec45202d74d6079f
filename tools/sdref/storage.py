"""safetensors reader/writer (pure Python + numpy) and diffusers-folder save/load.

Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets:[b,e]}},
optional "__metadata__": {str: str}; then the raw little-endian tensor bytes (offsets relative to the
end of the header). Tensors are written in sorted-name order, header padded with spaces to 8 bytes.
"""
import json
import os
import struct

import numpy as np
import torch

_DT = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
       "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_NAME = {np.dtype(v): k for k, v in _DT.items()}


def save_safetensors(tensors, path, metadata=None):
    """tensors: {name: torch.Tensor or np.ndarray}. bf16 is not supported (not needed here)."""
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        a = t.detach().cpu().contiguous().numpy() if torch.is_tensor(t) else np.ascontiguousarray(t)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        b = a.tobytes()
        header[name] = {"dtype": _NAME[np.dtype(a.dtype.newbyteorder("="))], "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path, as_torch=True):
    """-> ({name: tensor}, metadata dict)"""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        a = np.frombuffer(data, dtype=np.dtype(_DT[info["dtype"]]).newbyteorder("<"), count=(e - b) // np.dtype(_DT[info["dtype"]]).itemsize,
                          offset=base + b).reshape(info["shape"]).copy()
        out[name] = torch.from_numpy(a.astype(a.dtype.newbyteorder("="))) if as_torch else a
    return out, meta


# ---------------------------------------------------------------- diffusers folder

SCHEDULER_CONFIG = dict(
    _class_name="DDIMScheduler", num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
    beta_schedule="scaled_linear", trained_betas=None, clip_sample=False, set_alpha_to_one=False,
    steps_offset=1, prediction_type="epsilon", timestep_spacing="leading",
)


def _wjson(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def _state(model, dtype):
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}


def save_diffusers(folder, unet, vae, text_encoder, vocab_file, merges_file, dtype=torch.float16,
                   scheduler_config=None, tokenizer_config=None):
    """Write a diffusers-layout folder. vocab_file / merges_file are copied into tokenizer/."""
    import shutil
    for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    tname = "float16" if dtype == torch.float16 else "float32"
    ucfg = dict(unet.config)
    _wjson(os.path.join(folder, "unet", "config.json"), ucfg)
    save_safetensors(_state(unet, dtype), os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors"),
                     {"format": "pt"})
    _wjson(os.path.join(folder, "vae", "config.json"), dict(vae.config))
    save_safetensors(_state(vae, dtype), os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors"),
                     {"format": "pt"})
    tcfg = dict(text_encoder.config)
    tcfg["torch_dtype"] = tname
    _wjson(os.path.join(folder, "text_encoder", "config.json"), tcfg)
    save_safetensors(_state(text_encoder, dtype), os.path.join(folder, "text_encoder", "model.safetensors"),
                     {"format": "pt"})
    shutil.copyfile(vocab_file, os.path.join(folder, "tokenizer", "vocab.json"))
    shutil.copyfile(merges_file, os.path.join(folder, "tokenizer", "merges.txt"))
    tok_cfg = dict(tokenizer_class="CLIPTokenizer", model_max_length=77, do_lower_case=True,
                   bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                   unk_token="<|endoftext|>", errors="replace", add_prefix_space=False)
    tok_cfg.update(tokenizer_config or {})
    _wjson(os.path.join(folder, "tokenizer", "tokenizer_config.json"), tok_cfg)
    _wjson(os.path.join(folder, "tokenizer", "special_tokens_map.json"),
           dict(bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                unk_token="<|endoftext|>"))
    _wjson(os.path.join(folder, "scheduler", "scheduler_config.json"), scheduler_config or SCHEDULER_CONFIG)
    _wjson(os.path.join(folder, "model_index.json"), {
        "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.25.0",
        "feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"]})


def _load_into(model, path, strict=True):
    sd, _ = load_safetensors(path)
    own = model.state_dict()
    sd = {k: v.to(own[k].dtype) if k in own else v for k, v in sd.items()}
    sd.pop("text_model.embeddings.position_ids", None)
    missing, unexpected = model.load_state_dict(sd, strict=strict)
    return model


class Pipeline:
    """Loaded diffusers folder: .unet, .vae, .text_encoder, .tokenizer, .scheduler_config (dict), .folder"""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def encode_prompt(self, prompts):
        """list[str] -> [B,77,D] conditioning (last_hidden_state)."""
        ids = self.tokenizer.batch(prompts)
        return self.text_encoder(ids)


def load_diffusers(folder, dtype=torch.float32):
    """Load a diffusers folder written by save_diffusers (or a compatible SD-1.x folder) into sdref models."""
    from .unet import UNet2DConditionModel
    from .vae import AutoencoderKL
    from .clip import CLIPTextModel, CLIPTokenizer
    rj = lambda *p: json.load(open(os.path.join(folder, *p)))
    unet = UNet2DConditionModel(rj("unet", "config.json"))
    _load_into(unet, os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors"))
    vae = AutoencoderKL(rj("vae", "config.json"))
    _load_into(vae, os.path.join(folder, "vae", "diffusion_pytorch_model.safetensors"))
    te = CLIPTextModel(rj("text_encoder", "config.json"))
    _load_into(te, os.path.join(folder, "text_encoder", "model.safetensors"))
    tok = CLIPTokenizer.from_folder(os.path.join(folder, "tokenizer"))
    sched = rj("scheduler", "scheduler_config.json")
    for m in (unet, vae, te):
        m.to(dtype).eval()
    return Pipeline(unet=unet, vae=vae, text_encoder=te, tokenizer=tok, scheduler_config=sched, folder=folder)
