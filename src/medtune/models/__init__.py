"""Networks (plain nn.Modules built from a NetSpec) and the LightningModule that trains them."""
