"""Avaturn Live session broker: the code shared by every Lambda function (the layer)."""
