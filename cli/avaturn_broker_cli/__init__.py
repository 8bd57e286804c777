"""``avaturn-broker``: the operator's command-line tool for an Avaturn Live session broker.

It calls the broker's ``/admin/`` routes, signed with the caller's AWS credentials (SigV4), on
the API a CloudFormation stack's ``ApiUrl`` output names (``--stack-name``) or at ``--api-url``.
"""

__version__ = "0.1.0"
