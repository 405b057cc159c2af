"""Connectors: vision features of one token group (a frame or a clip) -> LM-space tokens.

Input to every connector is a list of groups, each a tensor ``(t, h, w, C)`` (``t`` frames of an
``h x w`` patch grid); output is ``(G, n_tokens, D)``. Groups may differ in ``t`` (an image is a
one-frame group next to four-frame clips), so the perceiver masks padded context and the pooling
connectors average over time per group.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from sparrow.model.config import ConnectorConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32: bf16 variance is too coarse for small activations.
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)


def _act(name: str) -> nn.Module:
    acts = {"silu": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU}
    if name not in acts:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(acts)}")
    return acts[name]()


class SwiGLU(nn.Module):
    """``down(act(gate(x)) * up(x))`` — the gated MLP of Llama / Idefics2."""

    def __init__(self, dim: int, hidden: int, out_dim: int | None = None, act: str = "silu"):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, out_dim or dim, bias=False)
        self.act = _act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


# ------------------------------------------------------------------------------------------ perceiver


class PerceiverAttention(nn.Module):
    """Latents (queries) attend to [context; latents] (keys/values), grouped-query attention."""

    def __init__(self, dim: int, n_heads: int, head_dim: int, n_kv_heads: int, dropout: float = 0.0):
        super().__init__()
        self.n_heads, self.head_dim, self.n_kv_heads = n_heads, head_dim, n_kv_heads
        self.q_proj = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(n_heads * head_dim, dim, bias=False)
        self.dropout = dropout

    def forward(self, latents: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        b, q_len, _ = latents.shape
        kv = torch.cat([context, latents], dim=1)
        q = self.q_proj(latents).view(b, q_len, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(kv).view(b, kv.shape[1], self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(kv).view(b, kv.shape[1], self.n_kv_heads, self.head_dim).transpose(1, 2)
        rep = self.n_heads // self.n_kv_heads
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        mask = key_mask[:, None, None, :]  # (b, 1, 1, kv) True = attend
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.o_proj(out.transpose(1, 2).reshape(b, q_len, -1))


class PerceiverLayer(nn.Module):
    def __init__(self, dim: int, c: ConnectorConfig, hidden: int):
        super().__init__()
        self.input_latents_norm = RMSNorm(dim, c.rms_norm_eps)
        self.input_context_norm = RMSNorm(dim, c.rms_norm_eps)
        self.self_attn = PerceiverAttention(
            dim, c.resampler_n_heads, c.resampler_head_dim, c.num_key_value_heads, c.attention_dropout
        )
        self.post_attention_layernorm = RMSNorm(dim, c.rms_norm_eps)
        self.mlp = SwiGLU(dim, hidden, act=c.hidden_act)

    def forward(self, latents: torch.Tensor, context: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        h = self.self_attn(self.input_latents_norm(latents), self.input_context_norm(context), key_mask)
        latents = latents + h
        return latents + self.mlp(self.post_attention_layernorm(latents))


class PerceiverResampler(nn.Module):
    """Idefics2-style resampler: a SwiGLU projection of the vision features into LM space, then
    ``resampler_depth`` layers in which ``resampler_n_latents`` learned latents attend to the group's
    features concatenated with themselves, then a final RMSNorm."""

    def __init__(self, in_dim: int, out_dim: int, c: ConnectorConfig):
        super().__init__()
        hidden = c.intermediate_size or 4 * out_dim
        self.modality_projection = SwiGLU(in_dim, hidden, out_dim, act=c.hidden_act)
        # Random (not Idefics2's all-ones) latents: identical latents would get identical gradients
        # and never differentiate when trained from scratch. Unit scale matches the RMSNorm output.
        self.latents = nn.Parameter(torch.randn(c.resampler_n_latents, out_dim))
        self.layers = nn.ModuleList(PerceiverLayer(out_dim, c, hidden) for _ in range(c.resampler_depth))
        self.norm = RMSNorm(out_dim, c.rms_norm_eps)
        self.n_tokens = c.resampler_n_latents
        self.gradient_checkpointing = False

    def forward(self, groups: list[torch.Tensor]) -> torch.Tensor:
        lengths = [g.shape[0] * g.shape[1] * g.shape[2] for g in groups]
        flat = [g.reshape(n, g.shape[-1]) for g, n in zip(groups, lengths, strict=True)]
        context = nn.utils.rnn.pad_sequence(flat, batch_first=True)  # (G, Lmax, C)
        context = self.modality_projection(context)
        n_groups, lmax = context.shape[:2]
        pos = torch.arange(lmax, device=context.device)
        ctx_mask = pos[None, :] < torch.tensor(lengths, device=context.device)[:, None]
        key_mask = torch.cat([ctx_mask, ctx_mask.new_ones(n_groups, self.n_tokens)], dim=1)
        latents = self.latents.to(context.dtype)[None].expand(n_groups, -1, -1)
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                latents = checkpoint(layer, latents, context, key_mask, use_reentrant=False)
            else:
                latents = layer(latents, context, key_mask)
        return self.norm(latents)


# ------------------------------------------------------------------------------------ pooling kinds


class MLPPool(nn.Module):
    """LLaVA-style two-layer GELU MLP into LM space, then average pooling: over time within the
    group and spatially by ``pool`` (adaptive, so grids not divisible by ``pool`` still work)."""

    def __init__(self, in_dim: int, out_dim: int, c: ConnectorConfig, grid: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
        self.pool = c.pool
        self.side = math.ceil(grid / c.pool)
        self.n_tokens = self.side * self.side  # at the grid it was built for
        self.gradient_checkpointing = False

    def forward(self, groups: list[torch.Tensor]) -> torch.Tensor:
        pooled = torch.stack([g.mean(0) for g in groups])  # (G, h, w, C)
        x = self.mlp(pooled).permute(0, 3, 1, 2)  # (G, D, h, w)
        # The side follows the grid it is given: frames decoded at another size than the model was built
        # for (a stage's sampling.image_size) give another grid, and the processor counts ceil(h / pool).
        x = F.adaptive_avg_pool2d(x, -(-x.shape[-1] // self.pool))
        return x.flatten(2).transpose(1, 2)


class PixelShuffle(nn.Module):
    """Idefics3 / SmolVLM-style: space-to-depth by ``shuffle_factor`` (fewer tokens, wider
    channels), then one linear layer into LM space; clips are averaged over time first."""

    def __init__(self, in_dim: int, out_dim: int, c: ConnectorConfig, grid: int):
        super().__init__()
        if grid % c.shuffle_factor:
            raise ValueError(f"patch grid {grid} is not divisible by shuffle_factor {c.shuffle_factor}")
        self.k = c.shuffle_factor
        self.proj = nn.Linear(in_dim * self.k * self.k, out_dim)
        self.n_tokens = (grid // self.k) ** 2
        self.gradient_checkpointing = False

    def forward(self, groups: list[torch.Tensor]) -> torch.Tensor:
        x = torch.stack([g.mean(0) for g in groups])  # (G, h, w, C)
        g, h, w, c = x.shape
        k = self.k
        x = (
            x.view(g, h // k, k, w // k, k, c)
            .permute(0, 1, 3, 2, 4, 5)
            .reshape(g, (h // k) * (w // k), k * k * c)
        )
        return self.proj(x)


def build_connector(c: ConnectorConfig, in_dim: int, out_dim: int, grid: int) -> nn.Module:
    if c.type == "perceiver":
        return PerceiverResampler(in_dim, out_dim, c)
    if c.type == "mlp_pool":
        return MLPPool(in_dim, out_dim, c, grid)
    if c.type == "pixel_shuffle":
        return PixelShuffle(in_dim, out_dim, c, grid)
    raise ValueError(f"unknown connector type {c.type!r}")
