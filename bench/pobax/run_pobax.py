"""Time one POBAX 0.0.1 training program; run it INSIDE build/pobax-venv (pobax_venv.py). JSON out.

    python run_pobax.py {ppo,transformer} --results_dir DIR [POBAX's own flags ...]

The flags after the algorithm go to POBAX's own argument class (``PPOHyperparams`` or
``TransformerHyperparams``), exactly as ``python -m pobax.algos.ppo ...`` would parse them. The
program is built the way POBAX's ``main`` builds it (its ``make_train``, one ``vmap`` per argument
of ``train`` in signature order, ``jax.jit``), then timed in separate phases, each blocked on:

- import_s: this process's start to "POBAX and JAX imported" (as sweepax.train measures it);
- compile_s: ``train_jit.lower(...).compile()`` (trace + lowering + XLA compile);
- run_s: calling the compiled program and ``jax.block_until_ready`` on the whole output. (POBAX's
  own "Total runtime" does not block, so on CPU it is about the compile time only.)
- save_s: what POBAX's ``main`` does afterwards (numpyify + orbax ``PyTreeCheckpointer.save``), into
  ``--results_dir`` instead of ``ROOT_DIR/results``.

POBAX's transformer module reads a module-global ``args`` that only its ``__main__`` block defines;
this driver sets it, as running that module as a script would. Even so, 0.0.1's transformer does not
run on T-Maze: ``make_train`` calls ``get_env()`` without its required ``num_envs`` (TypeError), and
with that supplied, ``get_transformer_network_fn`` reads ``.shape`` of T-Maze's ``Dict`` observation
space (AttributeError), with or without ``--action_concat``. The bench reports it as n/a.
"""

import time

_T0 = time.perf_counter()

import inspect  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections import deque  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402
import orbax.checkpoint  # noqa: E402
from flax.training import orbax_utils  # noqa: E402
from pobax.config import PPOHyperparams, TransformerHyperparams  # noqa: E402
from pobax.utils.file_system import numpyify  # noqa: E402


def main() -> None:
    """Parse, build, compile, run, save; print the timings as one JSON line."""
    algo = sys.argv[1]
    rest = sys.argv[2:]
    results_dir = Path(rest[rest.index("--results_dir") + 1])
    del rest[rest.index("--results_dir") : rest.index("--results_dir") + 2]
    if algo == "ppo":
        from pobax.algos import ppo as module

        args = PPOHyperparams().parse_args(rest)
    elif algo == "transformer":
        from pobax.algos import transformer_xl as module

        args = TransformerHyperparams().parse_args(rest)
        module.args = args  # PPO.loss reads the module-global `args` (set by its __main__ block)
    else:
        raise SystemExit(f"unknown algorithm {algo!r}: ppo or transformer")
    import_s = time.perf_counter() - _T0
    jax.config.update("jax_platform_name", args.platform)

    # As POBAX's main(): rngs, make_train, one vmap per train() argument, jit.
    rng = jax.random.PRNGKey(args.seed)
    make_train_rng, rng = jax.random.split(rng)
    rngs = jax.random.split(rng, args.n_seeds)
    train_fn = module.make_train(args, make_train_rng)
    train_args = list(inspect.signature(train_fn).parameters.keys())
    vmaps_train = train_fn
    swept_args = deque()
    for i, arg in reversed(list(enumerate(train_args))):
        dims = [None] * len(train_args)
        dims[i] = 0
        vmaps_train = jax.vmap(vmaps_train, in_axes=dims)
        swept_args.appendleft(rngs if arg == "rng" else getattr(args, arg))
    train_jit = jax.jit(vmaps_train)

    t = time.perf_counter()
    compiled = train_jit.lower(*swept_args).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    out = jax.block_until_ready(compiled(*swept_args))
    run_s = time.perf_counter() - t

    # As POBAX's main() after training: drop runner_state, numpyify, orbax save.
    t = time.perf_counter()
    final_train_state = out["runner_state"][0]
    if not args.save_runner_state:
        del out["runner_state"]
    all_results = {
        "argument_order": train_args,
        "out": out,
        "args": args.as_dict(),
        "total_runtime": compile_s + run_s,
        "final_train_state": final_train_state,
    }
    all_results = jax.tree.map(numpyify, all_results)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{args.env}_seed({args.seed})_{algo}"
    checkpointer = orbax.checkpoint.PyTreeCheckpointer()
    checkpointer.save(path, all_results, save_args=orbax_utils.save_args_from_target(all_results))
    save_s = time.perf_counter() - t

    configs = 1
    for arg in train_args:
        if arg != "rng":
            configs *= len(getattr(args, arg))
    num_updates = args.total_steps // args.num_steps // args.num_envs
    env_steps = configs * args.n_seeds * num_updates * args.num_steps * args.num_envs
    print(
        json.dumps(
            {
                "import_s": round(import_s, 3),
                "compile_s": round(compile_s, 3),
                "run_s": round(run_s, 3),
                "save_s": round(save_s, 3),
                "configs": configs,
                "seeds": args.n_seeds,
                "env_steps": env_steps,
                "steps_per_s": round(env_steps / run_s),
                "jax": jax.__version__,
                "device": str(jax.devices()[0]),
                "persistent_cache": jax.config.jax_compilation_cache_dir,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
