import pytest


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray for the whole session (starting one costs seconds)."""
    import ray

    from vidsight.pipeline import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()
