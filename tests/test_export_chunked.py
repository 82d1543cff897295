"""The exported single-tensor path runs element-wise programs in cache-sized chunks on CPU.

Rule protected: chunking is an implementation detail. Every element gets the same arithmetic,
so a chunked step gives the parameters and state of one call over the whole tensor: bit for bit
for the reference programs (their ops' vectorised and scalar kernels agree), to the last bit of
rounding for transcendental ops (torch runs a kernel's scalar tail where a range ends, so which
elements take it moves with chunk and thread boundaries -- as it does with the thread count).
Chunking is never used where it would change the result (reductions need the whole tensor; a
uniform slot such as Adam's step counter would advance once per chunk) nor on tensors it cannot
view flat.
"""

from __future__ import annotations

import pytest
import torch

from optsearch.primitives import parse
from optsearch.primitives.export import export_source
from optsearch.primitives.reference import REFERENCE_NAMES, load_reference
from tests.test_export import EXOTIC, Lion, grads_for, load_class, run  # noqa: F401

# larger than the test chunk (8 elements per intra-op thread) and not a multiple of it: the last
# chunk is ragged
SHAPES = [(37, 29), (29,), (5,), ()]


def module_of(cls):
    import sys
    return sys.modules[cls.__module__]


def params_for(seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in SHAPES]


def trajectory(cls, chunk, steps=5, **kw):
    module_of(cls)._CHUNK = chunk
    if chunk < 1 << 30:  # otherwise the test would compare one call with itself
        assert max(torch.Size(s).numel() for s in SHAPES) > 2 * chunk * torch.get_num_threads()
    params = params_for()
    opt = cls(params, foreach=False, **kw)
    final = run(opt, params, steps)
    state = [t.clone() for p in params for t in opt.state[p].values()]
    return final, state


def assert_identical(a, b):
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_chunked_steps_are_bit_identical_for_every_reference_program(name):
    cls = load_class(export_source(load_reference(name)), "DiscoveredOptimizer")
    whole = trajectory(cls, chunk=1 << 30)
    chunked = trajectory(cls, chunk=8)
    assert_identical(whole[0], chunked[0])
    assert_identical(whole[1], chunked[1])


def test_chunking_is_used_only_for_element_wise_programs():
    """Adam's bias correction reads a step counter (a uniform slot); the exotic program reduces."""
    def flag(program):
        cls = load_class(export_source(program), "DiscoveredOptimizer")
        return module_of(cls)._CHUNKABLE
    assert flag(load_reference("lion")) and flag(load_reference("adamw"))
    assert not flag(load_reference("adam"))
    assert not flag(parse(EXOTIC["reductions"]))


@pytest.mark.parametrize("name", sorted(EXOTIC))
def test_unusual_programs_give_the_same_result_with_any_chunk_size(name):
    cls = load_class(export_source(parse(EXOTIC[name])), "DiscoveredOptimizer")
    for whole, chunked in zip(trajectory(cls, chunk=1 << 30)[0], trajectory(cls, chunk=8)[0]):
        torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-7)


def test_chunked_maximize_and_bf16_state_match_the_whole_tensor_step(Lion):  # noqa: F811
    for kw in ({"maximize": True}, {"state_dtype": torch.bfloat16}):
        whole, chunked = trajectory(Lion, 1 << 30, **kw), trajectory(Lion, 8, **kw)
        assert_identical(whole[0], chunked[0])
        assert_identical(whole[1], chunked[1])
    assert all(s.dtype == torch.bfloat16 for s in chunked[1])  # the last run: bf16 state


def test_non_contiguous_parameters_fall_back_to_one_call(Lion):  # noqa: F811
    """A transposed leaf cannot be viewed flat: it is updated whole, with the same result."""
    results = []
    for chunk in (1 << 30, 8):
        module_of(Lion)._CHUNK = chunk
        p = torch.randn(7, 13, generator=torch.Generator().manual_seed(3)).t().requires_grad_()
        assert not p.is_contiguous()
        opt = Lion([p], foreach=False)
        for t in range(4):
            p.grad = grads_for([p], t)[0]
            opt.step()
        results.append(p.detach().clone())
    assert torch.equal(*results)


def test_compiled_step_over_many_parameters_has_no_graph_break(Lion):  # noqa: F811
    """The chunking branch is decided before anything dynamo cannot trace: a compiled step over
    a dozen parameters is one graph (a break per parameter once cost 30% of compiled speed)."""
    import torch._dynamo

    torch._dynamo.reset()
    params = [torch.randn(40, 40).requires_grad_() for _ in range(12)]
    for p in params:
        p.grad = torch.randn_like(p)
    opt = Lion(params, lr=torch.tensor(1e-4), foreach=False)
    opt.step()  # state exists: the traced step is the steady-state one
    explained = torch._dynamo.explain(opt.step)()
    assert explained.graph_break_count == 0, explained.break_reasons
