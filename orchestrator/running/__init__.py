"""Running trials: Ray Tune, Ray Train (data-parallel), cluster checks, Ray Jobs and the driver of a launch."""
