"""Cluster jobs: validate and plan a job here, submit it with Ray's Job Submission SDK, watch and fetch it.

- `spec`: job file + overrides -> the validated config the cluster runs (outputs, run name fixed)
- `plan`, `memory`: the `--dry-run` plan (world size, batches, steps, tokens, memory per GPU)
- `package`: working_dir, runtime_env and entrypoint; `submit`: the submission
- `client`, `jobs`: SDK client with clear errors; status, logs, stop, list, fetch
- `storage`, `entry`: s3:// / gs:// outputs via pyarrow/fsspec filesystems, uploaded from inside the job
"""
