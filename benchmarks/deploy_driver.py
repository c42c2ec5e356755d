# mypy: disable-error-code="import-not-found, import-untyped, no-untyped-call"
"""Run the seed example once, with ocibuild or with Kubeflow Fairing 1.0.2: the timed part.

Run by the tool's own python (ocibuild's venv, or the Fairing venv), as a plain script::

    PY benchmarks/deploy_driver.py --tool ocibuild|fairing --registry HOST:PORT \
        --image-name REPO --base HOST:PORT/bench/base:latest --src DIR --namespace NS \
        --label KEY=VALUE

The two tools share the config API, so the seed pattern is the same code for both; only the
import differs (``import ocibuild as fairing`` is ocibuild's migration line). The cluster is the
one ``KUBECONFIG`` names. Prints one JSON line last: the wall clock (``time.time()``, which the
harness's watcher also uses) just before ``config.run()`` and just after it returned, the
user agent of the tool's Kubernetes client (how its requests are found in the audit log), and
what the tool says about itself. ``t_start`` (before the tool's imports) is kept too: Fairing
imports most of itself at ``from kubeflow import fairing``, ocibuild lazily inside ``run()``.
"""

import argparse
import json
import logging
import os
import sys
import time


def main() -> int:
    """Run the pipeline, print the result."""
    t_start = time.time()
    parser = argparse.ArgumentParser()
    parser.add_argument("--tool", choices=("ocibuild", "fairing"), required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--image-name", required=True)
    parser.add_argument("--base", required=True)
    parser.add_argument("--src", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--label", action="append", default=[])
    parser.add_argument("--deployer", default="job")
    parser.add_argument("--option", action="append", default=[], help="KEY=JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    labels = dict(pair.split("=", 1) for pair in args.label)
    options = {k: json.loads(v) for k, v in (pair.split("=", 1) for pair in args.option)}

    if args.tool == "fairing":
        from kubeflow import fairing
    else:
        import ocibuild as fairing
    import kubernetes

    os.chdir(args.src)
    fairing.config.set_preprocessor("python", input_files=["main.py"])
    fairing.config.set_builder(
        "append",
        base_image=args.base,
        registry=args.registry,
        image_name=args.image_name,
        push=True,
    )
    if args.deployer == "serving":
        _set_serving(fairing, args.namespace, labels)
    else:
        fairing.config.set_deployer(
            args.deployer, namespace=args.namespace, labels=labels, **options
        )
    # The client's own name for itself ("OpenAPI-Generator/37.0.2/python",
    # "Swagger-Codegen/10.0.1/python"): what the audit log records for the tool's requests.
    user_agent = kubernetes.client.ApiClient().user_agent

    t_run = time.time()
    result = fairing.config.run()
    t_return = time.time()
    out = {
        "t_start": t_start,
        "t_run": t_run,
        "t_return": t_return,
        "user_agent": user_agent,
    }
    if args.deployer == "serving":
        out.update(_serving_result(args.tool, result))
    elif args.tool == "fairing":
        _pre, builder, deployer = result
        out["image"] = builder.image_tag
        if args.deployer == "job":
            out["job"] = deployer._created_job.metadata.name
        else:
            out["job"] = getattr(deployer, f"created_{args.deployer}")["metadata"]["name"]
    else:
        out["image"] = result.image
        out["job"] = result.handle.name
        out["self_counted_requests"] = result.deployer.access.requests
    sys.stdout.flush()
    print(json.dumps(out))
    return 0


def _set_serving(fairing, namespace, labels):
    """Fairing's Serving call, which ocibuild's serving deployer takes as it is."""
    fairing.config.set_deployer(
        "serving", serving_class="Model", namespace=namespace, labels=labels
    )


def _serving_result(tool, result):
    if tool == "fairing":
        _pre, builder, deployer = result
        return {"image": builder.image_tag, "job": deployer.deployment.metadata.name}
    return {
        "image": result.image,
        "job": result.handle.name,
        "url": result.handle.url,
        "self_counted_requests": result.deployer.access.requests,
    }


if __name__ == "__main__":
    sys.exit(main())
