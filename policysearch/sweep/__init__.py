"""Many runs: `policysearch sweep` (a grid of trials on a Ray cluster, resumable) and
`policysearch report` (statistics over seeds). The edge of the library: processes, Ray, files."""
