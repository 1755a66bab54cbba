"""What people do with a trained generator's latent space: project real pictures into it (project.py), find and
apply editing directions (directions.py), and the latent files both read and write (space.py)."""
