"""Resource descriptions shared by the local bootstrap and the AWS template."""
