"""The test suite and its helpers (checkpoints, runtime_bundles, project_data, ...): a package, so tests
import `from tests.checkpoints import ...` without editing sys.path."""
