"""Run the kerasbrain CLI in a process whose CPU shows up as two devices (the test of several GPUs).

    python tests/training/two_cpu_devices.py train unet3d ... --distribution data_parallel

JAX: XLA's host device count, set before JAX starts. TensorFlow: two logical CPU devices, set
before TensorFlow initialises its devices.
"""

import os
import sys

if __name__ == "__main__":
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "jax":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    else:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from cli.main import main

    main()  # click reads sys.argv
